"""The procedure base class: parameters, validation, guarantee, run loop."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import ParameterError


@dataclass
class ProcedureOutput:
    """What a procedure returns: the selected system (0-based, global) and extras."""

    best: int
    extras: dict[str, Any] = field(default_factory=dict)


class Procedure:
    """Base of every R&S procedure.

    Subclasses write an ``__init__`` with explicit keyword parameters that stores
    them (scikit-learn style) and calls ``self._validate_params()``; they set the
    class attributes below and implement :meth:`run`.

    Class attributes
    ----------------
    name : registry name.
    kind : "fixed_precision" or "fixed_budget".
    guarantee : the statistical guarantee in words (PCS >= 1-alpha under the IZ, PGS, asymptotic, none).
    assumptions : e.g. "normal outputs; independent systems".
    supports_crn : whether the guarantee holds with common random numbers.
    reference : citation.
    notes : what a user should know beyond the guarantee (listed by ``rands procedures``).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    guarantee: ClassVar[str] = ""
    assumptions: ClassVar[str] = ""
    supports_crn: ClassVar[bool] = False
    reference: ClassVar[str] = ""
    notes: ClassVar[str] = ""
    #: parameter name -> list of :mod:`rands.params` constraints (any one suffices)
    _parameter_constraints: ClassVar[dict] = {}

    # ---------------------------------------------------------------- params
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def _validate_params(self) -> None:
        """Check parameters that do not depend on the problem. Subclasses extend.

        First every parameter against ``_parameter_constraints`` (one line naming the
        procedure, the parameter, the value and what is valid), then CRN support.
        """
        from ..params import validate_params
        validate_params(type(self)._parameter_constraints, self.get_params(), f"procedure {self.name!r}",
                        unknown=False)
        crn = getattr(self, "crn", False)
        if crn and not self.supports_crn:
            raise ParameterError(
                f"{self.name} does not allow common random numbers (crn=True): its guarantee "
                f"assumes independent systems ({self.assumptions}); use crn=False")

    def check_problem(self, problem) -> None:
        """Check parameters against the problem (k, budget). Subclasses extend."""
        if problem.k < 2:
            raise ParameterError(f"k must be >= 2 systems, got {problem.k}")

    @property
    def crn_enabled(self) -> bool:
        return bool(getattr(self, "crn", False))

    def budget_limit(self, problem) -> int | None:
        """Total sample budget the context must enforce (fixed budget), else None."""
        return None

    # ---------------------------------------------------------------- run
    def run(self, ctx) -> ProcedureOutput:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    @classmethod
    def describe(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        inputs = {p.name: (None if p.default is p.empty else p.default)
                  for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD}
        return {"name": cls.name, "kind": cls.kind, "guarantee": cls.guarantee,
                "assumptions": cls.assumptions, "crn": cls.supports_crn, "inputs": inputs,
                "reference": cls.reference, **({"notes": cls.notes} if cls.notes else {})}


def check_budget(budget, n0: int, k: int, name: str = "budget") -> int:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer number of samples, got {budget!r}")
    if budget < n0 * k:
        raise ParameterError(f"{name}={budget} is below n0*k = {n0}*{k} = {n0 * k}; "
                             f"it must be at least the first stage")
    return int(budget)
