"""Systems to select among: the protocol, wrappers for user functions, built-ins.

``make(name, **params)`` builds a built-in problem: "slippage", "mdm", "random",
"clustered", "normal", "flowline", "inventory", "simopt" (plus names registered
through the ``rands.problems`` entry points: the applications' and other packages').
"""
from __future__ import annotations

import inspect
from typing import Any

from .. import plugins
from ..errors import ParameterError
from .base import Problem
from .function import FunctionProblem, VectorizedProblem, from_function, from_vectorized
from .simopt import SimOptProblem, from_simopt
from .normal import ClusteredNormal, MonotoneDecreasingMeans, NormalProblem, RandomMeans, Slippage

# the engine's own problems, name -> "module:Class", imported on demand so heavy problems cost
# nothing until used; applications and other packages add theirs through the "rands.problems"
# entry-point group (see rands.plugins), so the engine names no application
_BUILTIN: dict[str, str] = {
    "slippage": "rands.problems.normal:Slippage",
    "mdm": "rands.problems.normal:MonotoneDecreasingMeans",
    "random": "rands.problems.normal:RandomMeans",
    "clustered": "rands.problems.normal:ClusteredNormal",
    "normal": "rands.problems.normal:NormalProblem",
    "flowline": "rands.problems.flowline:FlowLine",
    "inventory": "rands.problems.inventory:Inventory",
    "sklearn": "rands.problems.estimator:SklearnProblem",
    "simopt": "rands.problems.simopt:SimOptProblem",
}
_REGISTERED: dict[str, str] = {}


def register(name: str, target: str) -> None:
    """Register a problem class as ``"package.module:Class"`` under ``name`` (this process only;
    a package registers for every process with a ``rands.problems`` entry point)."""
    _REGISTERED[name] = target


def _registry() -> dict[str, str]:
    return {**plugins.entry_point_targets(plugins.PROBLEMS), **_BUILTIN, **_REGISTERED}


def names() -> list[str]:
    return sorted(_registry())


def problem_class(name: str) -> type[Problem]:
    registry = _registry()
    if not isinstance(name, str) or name not in registry:
        raise ParameterError(f"unknown problem {name!r}; valid names: {', '.join(sorted(registry))}")
    return plugins.load_target(registry[name])


def make(name: str, **params: Any) -> Problem:
    """Build the problem ``name`` with ``params``; unknown parameters are refused with the valid ones."""
    cls = problem_class(name)
    valid = _init_params(cls)
    if valid is not None:
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ParameterError(f"unknown parameter(s) {unknown} for problem {name!r}; "
                                 f"valid: {', '.join(valid) if valid else 'none'}")
    # the class's constraints table (rands.params) and, when k is given, the memory it needs
    from ..params import validate_params
    from ..preflight import check_memory
    owner = f"problem {name!r}"
    table = getattr(cls, "_parameter_constraints", None)
    if table is not None:
        validate_params(table, params, owner, unknown=False)
    if "k" in params:
        check_memory(int(params["k"]), what=owner)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ParameterError(f"bad parameters for problem {name!r}: {exc}") from None
    except ParameterError as exc:
        text = str(exc)
        raise ParameterError(text if text.startswith(owner) else f"{owner}: {text}") from None
    except MemoryError:
        raise ParameterError(f"{owner} does not fit in memory with {sorted(params)} as given") from None


def _init_params(cls) -> list[str] | None:
    """Keyword parameters of ``cls.__init__`` (None when it takes ``**kwargs``)."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    out = []
    for p in list(sig.parameters.values())[1:]:
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            out.append(p.name)
    return out


__all__ = ["Problem", "FunctionProblem", "VectorizedProblem", "from_function", "from_vectorized",
           "make", "register", "names", "from_simopt", "NormalProblem", "Slippage", "MonotoneDecreasingMeans",
           "RandomMeans", "ClusteredNormal", "from_estimator", "EstimatorProblem"]


def __getattr__(name: str):
    # scikit-learn is imported only when the estimator adapter is used
    if name in ("from_estimator", "EstimatorProblem", "SklearnProblem"):
        from . import estimator
        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
