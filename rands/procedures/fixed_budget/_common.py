"""Helpers shared by the fixed-budget procedures (not public API)."""
from __future__ import annotations

import numpy as np

#: samples per ``ctx.draw`` call when a stage samples many systems: big enough that the
#: ~20 us per-call overhead is negligible, small enough that the (systems x n) temporaries
#: of the context stay in cache (one 2e7-sample call is ~4x slower than 2^18-sample chunks).
CHUNK_SAMPLES = 1 << 18


def draw_chunked(ctx, systems: np.ndarray, n: int, *, start: int | None = None,
                 want_sums: bool = False) -> np.ndarray | None:
    """``ctx.draw(systems, n)`` in chunks of systems; returns the per-system sums of the
    drawn values if ``want_sums`` (the context keeps the statistics either way).

    The values are the same as one big draw: sample (i, r) depends only on (seed, i, r).
    """
    systems = np.asarray(systems, dtype=np.int64)
    m = systems.shape[0]
    sums = np.empty(m) if want_sums else None
    if n <= 0 or m == 0:
        if want_sums:
            sums[:] = 0.0
        return sums
    step = max(1, CHUNK_SAMPLES // n)
    for a in range(0, m, step):
        vals = ctx.draw(systems[a:a + step], n, start=start)
        if want_sums:
            sums[a:a + step] = vals.sum(axis=1)
    return sums


def argmax_first(x: np.ndarray) -> int:
    """Index of the largest finite value (lowest index on ties)."""
    return int(np.argmax(np.where(np.isnan(x), -np.inf, x)))


def restored_state(ctx) -> dict:
    """The restored checkpoint state with 0-d arrays turned into Python scalars."""
    state = ctx.restored or {}
    out = {}
    for key, val in state.items():
        if isinstance(val, np.ndarray) and val.ndim == 0:
            val = val.item()
        out[key] = val
    return out
