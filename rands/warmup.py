"""Load the engine's compiled kernels before a run (numba caches load on first call).

A fresh process pays tens of milliseconds per compiled function the first time
it is called (hundreds on a loaded machine), more when the cache must be
written. Workers call :func:`warm_kernels` when they start, so that this cost is
reported as start-up and never lands inside a selection.
"""
from __future__ import annotations

import time


def warm_kernels() -> float:
    """Run a tiny KN, KT, OCBA and flow-line block; returns the seconds it took."""
    t0 = time.perf_counter()
    import numpy as np

    from .problems import make
    from .selection import select
    from .streams import Streams

    small = make("slippage", k=60, delta=0.5)
    select(small, "kn", seed=0, alpha=0.05, delta=0.5, n0=5)
    select(small, "kt", seed=0, alpha=0.05, delta=0.5, n0=5, g=4, crn=True)
    select(small, "ocba", seed=0, budget=600)
    flow = make("flowline")
    flow.simulate(np.zeros(2, dtype=np.int64), np.arange(2), Streams(0, crn=True))
    return time.perf_counter() - t0
