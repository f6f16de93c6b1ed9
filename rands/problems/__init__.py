"""Systems to select among: the protocol, wrappers for user functions, built-ins.

``make(name, **params)`` builds a built-in problem: "slippage", "mdm", "random",
"clustered", "normal", "flowline", "inventory" (plus names registered by
applications).
"""
from __future__ import annotations

import importlib
from typing import Any

from ..errors import ParameterError
from .base import Problem
from .function import FunctionProblem, VectorizedProblem, from_function, from_vectorized
from .normal import ClusteredNormal, MonotoneDecreasingMeans, NormalProblem, RandomMeans, Slippage

# name -> "module:Class", imported on demand so heavy problems cost nothing until used
_REGISTRY: dict[str, str] = {
    "slippage": "rands.problems.normal:Slippage",
    "mdm": "rands.problems.normal:MonotoneDecreasingMeans",
    "random": "rands.problems.normal:RandomMeans",
    "clustered": "rands.problems.normal:ClusteredNormal",
    "normal": "rands.problems.normal:NormalProblem",
    "flowline": "rands.problems.flowline:FlowLine",
    "inventory": "rands.problems.inventory:Inventory",
    "nas-live": "rands.applications.nas.live:LiveNAS",
    "nas-mini": "rands.applications.nas.tabular:MiniNAS",
    "rlr_finetunes": "rands.applications.rlr.problem:FineTuneProblem",
    "flops": "rands.applications.flops.problem:FlopsProblem",
    "riskpo_policies": "rands.applications.riskpo.problem:PolicyProblem",
}


def register(name: str, target: str) -> None:
    """Register a problem class as ``"package.module:Class"`` under ``name``."""
    _REGISTRY[name] = target


def names() -> list[str]:
    return sorted(_REGISTRY)


def problem_class(name: str) -> type[Problem]:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ParameterError(f"unknown problem {name!r}; valid names: {', '.join(names())}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make(name: str, **params: Any) -> Problem:
    """Build the built-in problem ``name`` with ``params``."""
    cls = problem_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ParameterError(f"bad parameters for problem {name!r}: {exc}") from None


__all__ = ["Problem", "FunctionProblem", "VectorizedProblem", "from_function", "from_vectorized",
           "make", "register", "names", "NormalProblem", "Slippage", "MonotoneDecreasingMeans",
           "RandomMeans", "ClusteredNormal"]
