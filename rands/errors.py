"""Errors raised by rands. Each names the offending input and what is valid."""
from __future__ import annotations


class ParameterError(ValueError):
    """A parameter of a problem, procedure or run is invalid."""


class BudgetExceededError(RuntimeError):
    """A procedure asked for more samples than its budget allows."""


class SimulationError(RuntimeError):
    """A simulation raised or returned a non-finite value.

    Attributes ``system``, ``replication`` and ``rank`` (None when serial) say where.
    """

    def __init__(self, message: str, *, system: int, replication: int, rank: int | None = None):
        where = f"system {system}, replication {replication}"
        if rank is not None:
            where += f", rank {rank}"
        super().__init__(f"{message} ({where})")
        self.system = int(system)
        self.replication = int(replication)
        self.rank = rank
        self.detail = message


class Interrupted(RuntimeError):
    """A run stopped on request (SIGTERM); its checkpoint was written."""

    def __init__(self, checkpoint: str | None):
        super().__init__(f"run interrupted; checkpoint written to {checkpoint}" if checkpoint else
                         "run interrupted (SIGTERM); no checkpoint was set, so nothing can resume")
        self.checkpoint = checkpoint


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (hasattr(value, "__index__")):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ParameterError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ParameterError(f"{name} must be <= {high}, got {value}")
    return value


def check_float(name: str, value, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if value != value:
        raise ParameterError(f"{name} must be a number, got nan")
    if low is not None and (value < low or (low_open and value == low)):
        rng = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}{')' if high_open or high is None else ']'}"
        raise ParameterError(f"{name} must be in {rng}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        rng = f"{'(' if low_open else '['}{low if low is not None else '-inf'}, {high}{')' if high_open else ']'}"
        raise ParameterError(f"{name} must be in {rng}, got {value}")
    return value


def check_alpha(value, name: str = "alpha") -> float:
    return check_float(name, value, low=0.0, high=1.0, low_open=True, high_open=True)


def check_delta(value, name: str = "delta") -> float:
    return check_float(name, value, low=0.0, low_open=True)
