"""Problems from a user's function: scalar ``f(system, rng)`` or vectorized."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ParameterError, SimulationError
from ..streams import Streams, generator_for
from .base import Problem, check_k


class FunctionProblem(Problem):
    """Wraps ``fn(system: int, rng: numpy.random.Generator) -> float``.

    Each (system, replication) gets its own Philox generator keyed by
    (seed, system, replication) (by (seed, replication) under CRN). An exception
    raised by ``fn`` is re-raised as :class:`SimulationError` naming the pair.
    """

    name = "function"

    def __init__(self, fn: Callable[[int, np.random.Generator], float], k: int, *, true_means=None,
                 labels=None):
        if not callable(fn):
            raise ParameterError(f"fn must be callable as fn(system, rng), got {fn!r}")
        self.fn = fn
        self.k = check_k(k)
        self.true_means = None if true_means is None else _check_means(true_means, self.k)
        self.labels = labels

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        out = np.empty(len(systems), dtype=np.float64)
        for n, (i, r) in enumerate(zip(systems, reps)):
            try:
                out[n] = float(self.fn(int(i), generator_for(streams, int(i), int(r))))
            except Exception as exc:  # noqa: BLE001 - re-raised with its location
                raise SimulationError(f"simulation raised {type(exc).__name__}: {exc}",
                                      system=int(i), replication=int(r)) from exc
        return out

    def label(self, system: int) -> str:
        return str(self.labels[system]) if self.labels is not None else str(int(system))


class VectorizedProblem(Problem):
    """Wraps ``fn(systems, reps, streams) -> ndarray``, a whole block at once."""

    name = "vectorized"

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray, Streams], np.ndarray], k: int, *,
                 true_means=None):
        if not callable(fn):
            raise ParameterError(f"fn must be callable as fn(systems, reps, streams), got {fn!r}")
        self.fn = fn
        self.k = check_k(k)
        self.true_means = None if true_means is None else _check_means(true_means, self.k)

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        out = np.asarray(self.fn(systems, reps, streams), dtype=np.float64)
        if out.shape != (len(systems),):
            raise ParameterError(f"vectorized simulation must return shape ({len(systems)},), got {out.shape}")
        return out


def _check_means(true_means, k: int) -> np.ndarray:
    m = np.asarray(true_means, dtype=np.float64)
    if m.shape != (k,):
        raise ParameterError(f"true_means must have length k={k}, got shape {m.shape}")
    return m


def from_function(fn, k: int, *, true_means=None, labels=None) -> FunctionProblem:
    """Problem whose sample of system i is ``fn(i, rng)``."""
    return FunctionProblem(fn, k, true_means=true_means, labels=labels)


def from_vectorized(fn, k: int, *, true_means=None) -> VectorizedProblem:
    """Problem whose block of samples is ``fn(systems, reps, streams)``."""
    return VectorizedProblem(fn, k, true_means=true_means)
