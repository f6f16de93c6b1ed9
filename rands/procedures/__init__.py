"""R&S procedures. ``make(name, **params)`` builds one by name."""
from __future__ import annotations

import importlib

from ..errors import ParameterError
from .base import Procedure, ProcedureOutput

_REGISTRY: dict[str, str] = {
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


def register(name: str, target: str) -> None:
    _REGISTRY[name] = target


def names(available_only: bool = True) -> list[str]:
    if not available_only:
        return sorted(_REGISTRY)
    out = []
    for n in sorted(_REGISTRY):
        try:
            procedure_class(n)
            out.append(n)
        except (ImportError, AttributeError):
            pass
    return out


def procedure_class(name: str) -> type[Procedure]:
    if not isinstance(name, str) or name.lower() not in _REGISTRY:
        raise ParameterError(f"unknown procedure {name!r}; valid names: {', '.join(sorted(_REGISTRY))}")
    module, cls = _REGISTRY[name.lower()].split(":")
    return getattr(importlib.import_module(module), cls)


def make(name: str, **params) -> Procedure:
    cls = procedure_class(name)
    valid = cls._param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown} for procedure {name!r}; valid: {valid}")
    return cls(**params)


__all__ = ["Procedure", "ProcedureOutput", "make", "register", "names", "procedure_class"]
