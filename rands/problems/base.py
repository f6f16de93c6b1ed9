"""The problem protocol: k systems whose samples are drawn in blocks."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError
from ..streams import Streams


class Problem:
    """k systems to select among (largest mean is best).

    Subclasses implement :meth:`simulate`, which fills a block of
    (system, replication) pairs. Sample (i, r) must depend only on the
    streams' (seed, i, r) (or (seed, r) under CRN), never on the block it
    arrives in, so any partition of the work gives the same numbers.

    Attributes
    ----------
    k : number of systems.
    true_means : array of length k for problems with known truth, else None.
    name : registry name (``rands.problems.make(name, **params)`` rebuilds it).
    """

    name: str = "custom"
    k: int
    true_means: np.ndarray | None = None

    def simulate(self, systems: np.ndarray, reps: np.ndarray, streams: Streams) -> np.ndarray:
        """Outputs of the pairs (systems[n], reps[n]); float64 array of the same length."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """Parameters that rebuild this problem with ``make(self.name, **params)``."""
        return {}

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}

    def label(self, system: int) -> str:
        """Human-readable description of one system."""
        return str(int(system))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({args})"


def check_k(k, minimum: int = 2) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ParameterError(f"k (number of systems) must be an integer >= {minimum}, got {k!r}")
    if k < minimum:
        raise ParameterError(f"k (number of systems) must be >= {minimum}, got {k}")
    return int(k)
