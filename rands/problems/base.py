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


def check_block(systems, reps, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``systems`` and ``reps`` as contiguous int64 arrays of one block; raises on bad shapes or ids."""
    systems = np.ascontiguousarray(systems, dtype=np.int64)
    reps = np.ascontiguousarray(reps, dtype=np.int64)
    if systems.shape != reps.shape or systems.ndim != 1:
        raise ParameterError("systems and reps must be 1-D arrays of the same length")
    if systems.size and (systems.min() < 0 or systems.max() >= k):
        raise ParameterError(f"systems must be in [0, k={k}), got range "
                             f"[{systems.min()}, {systems.max()}]")
    return systems, reps


def check_k(k, minimum: int = 2) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ParameterError(f"k (number of systems) must be an integer >= {minimum}, got {k!r}")
    if k < minimum:
        raise ParameterError(f"k (number of systems) must be >= {minimum}, got {k}")
    return int(k)
