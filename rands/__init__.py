"""rands: ranking and selection for simulation optimization, from one core to MPI.

``rands.select(problem, procedure, seed=..., **params)`` selects the best of k
systems; ``rands.validate`` estimates PCS/PGS by macroreplication.
"""
from __future__ import annotations

from . import problems, procedures
from .errors import BudgetExceededError, Interrupted, ParameterError, SimulationError
from .results import SelectionResult
from .selection import select
from .streams import Streams

__version__ = "0.1.0"


def validate(problem, procedure, *, macroreps: int, seed, **kwargs):
    """PCS, PGS and sample statistics over ``macroreps`` runs (see rands.validation)."""
    from .validation import validate as _validate
    return _validate(problem, procedure, macroreps=macroreps, seed=seed, **kwargs)


__all__ = ["select", "validate", "problems", "procedures", "SelectionResult", "Streams",
           "ParameterError", "SimulationError", "BudgetExceededError", "Interrupted", "__version__"]
