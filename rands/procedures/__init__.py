"""R&S procedures. ``make(name, **params)`` builds one by name."""
from __future__ import annotations

import numpy as np

from .. import plugins
from ..errors import ParameterError
from .base import Procedure, ProcedureOutput

# the engine's procedures; other packages add theirs through the "rands.procedures" entry points
_BUILTIN: dict[str, str] = {
    "rinott": "rands.procedures.fixed_precision.rinott:Rinott",
    "kn": "rands.procedures.fixed_precision.kn:KN",
    "gsp": "rands.procedures.fixed_precision.gsp:GSP",
    "kt": "rands.procedures.fixed_precision.kt:KT",
    "equal": "rands.procedures.fixed_budget.equal:EqualAllocation",
    "ocba": "rands.procedures.fixed_budget.ocba:OCBA",
    "efg": "rands.procedures.fixed_budget.efg:EFG",
    "efg+": "rands.procedures.fixed_budget.efg:EFGPlus",
    "fbkt": "rands.procedures.fixed_budget.fbkt:FBKT",
    "p3c": "rands.procedures.p3c:P3C",
    "dc": "rands.procedures.p3c:DivideAndConquer",
    "pass": "rands.procedures.pass_:PASS",
}


_REGISTERED: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Register a procedure class as ``"package.module:Class"`` under ``name`` (this process only;
    a package registers for every process with a ``rands.procedures`` entry point)."""
    _REGISTERED[name.lower()] = target


def _registry() -> dict[str, str]:
    eps = {n.lower(): t for n, t in plugins.entry_point_targets(plugins.PROCEDURES).items()}
    return {**eps, **_BUILTIN, **_REGISTERED}


def names(available_only: bool = True) -> list[str]:
    registry = _registry()
    if not available_only:
        return sorted(registry)
    out = []
    for n in sorted(registry):
        try:
            procedure_class(n)
            out.append(n)
        except (ImportError, AttributeError):
            pass
    return out


def procedure_class(name: str) -> type[Procedure]:
    registry = _registry()
    if not isinstance(name, str) or name.lower() not in registry:
        raise ParameterError(f"unknown procedure {name!r}; valid names: {', '.join(sorted(registry))}")
    return plugins.load_target(registry[name.lower()])


def make(name: str, **params) -> Procedure:
    """Build procedure ``name``. ``crn`` is accepted by every procedure: one whose sampling mode is
    fixed (P3C always uses CRN, PASS never) takes the value it already has and refuses the other
    with the reason."""
    cls = procedure_class(name)
    valid = cls._param_names()
    fixed_crn = params.pop("crn") if "crn" in params and "crn" not in valid else None
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown} for procedure {name!r}; valid: {valid}")
    owner = f"procedure {(cls.name or name)!r}"
    try:
        proc = cls(**params)
    except ParameterError as exc:   # every refusal names the procedure (the tables already do)
        text = str(exc)
        raise ParameterError(text if text.startswith(owner) else f"{owner}: {text}") from None
    if fixed_crn is not None:
        if not isinstance(fixed_crn, (bool, np.bool_)):
            raise ParameterError(f"{owner}: crn must be true or false, got {fixed_crn!r}")
        mode = bool(proc.crn_enabled)
        if bool(fixed_crn) != mode:
            raise ParameterError(f"{owner}: crn={bool(fixed_crn)} is not available: {proc.name} "
                                 f"{'always uses' if mode else 'never uses'} common random numbers "
                                 f"({cls.assumptions}); omit crn or give crn={mode}")
    return proc


__all__ = ["Procedure", "ProcedureOutput", "make", "register", "names", "procedure_class"]
