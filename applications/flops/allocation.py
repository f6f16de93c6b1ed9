"""Integer allocation of a query budget across the points of a batch.

The within-batch problem (FLOPS, Ren et al. 2025, arXiv 2410.05966; see
shared/reference/flops.md section 4, a labelled reconstruction): a batch of B points,
point i receives q_i query units, its single-unit estimate has variance v_i, and
the batch gradient (1/B) sum_i ghat_i has variance

    Var = (1/B^2) sum_i v_i / q_i,   sum_i q_i = Q,  q_i >= q_min.

Its continuous minimiser is the Neyman allocation with floors (KKT):
q_i = max(q_min, c * sqrt(v_i)) with c set by the budget -- the same rule as
Neyman / OCBA allocation between systems in R&S. Pure numpy; no torch.
"""
from __future__ import annotations

import numpy as np

from rands.errors import ParameterError

__all__ = ["proportional_with_floor", "largest_remainder", "allocate", "allocation_variance"]


def proportional_with_floor(weights, total: float, floor: float = 0.0) -> np.ndarray:
    """Continuous q minimising sum w_i^2/q_i: q_i = max(floor, c*w_i), sum q_i = total.

    ``weights`` >= 0 (e.g. standard deviations). Points with zero weight get the
    floor. Exact water-filling by sorting: O(B log B).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ParameterError(f"weights must be a non-empty 1-d array, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ParameterError("weights must be finite and >= 0")
    b = w.size
    if total < floor * b - 1e-9:
        raise ParameterError(f"total={total} is below floor*B = {floor}*{b}")
    if w.sum() <= 0:
        return np.full(b, total / b)
    order = np.argsort(-w)                   # largest weights get c*w above the floor
    ws = w[order]
    csum = np.cumsum(ws)
    # with the m largest points proportional and the rest at the floor:
    # c = (total - floor*(b-m)) / csum[m-1]; valid when c*ws[m-1] >= floor
    m = np.arange(1, b + 1)
    c = (total - floor * (b - m)) / np.where(csum > 0, csum, np.inf)
    ok = c * ws >= floor - 1e-12
    # the set of proportional points is a prefix; take the largest valid m
    mm = int(np.flatnonzero(ok)[-1]) + 1 if ok.any() else 0
    q = np.full(b, float(floor))
    if mm > 0:
        q[order[:mm]] = np.maximum(c[mm - 1] * ws[:mm], floor)
    return q


def largest_remainder(q, total: int, floor: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Round continuous ``q`` (sum = total, q >= floor) to integers summing to ``total``.

    Hamilton's largest-remainder rule: floor each q_i, then give the leftover units
    to the largest fractional parts (ties broken at random when ``rng`` is given,
    else by index). Every result is >= ``floor`` and within 1 of q_i.
    """
    q = np.asarray(q, dtype=np.float64)
    total = int(total)
    base = np.floor(q + 1e-9).astype(np.int64)
    base = np.maximum(base, int(floor))
    left = total - int(base.sum())
    if left < 0:   # only from rounding noise in q: take back from the largest above the floor
        for _ in range(-left):
            j = int(np.argmin(np.where(base > floor, q - base, np.inf)))
            base[j] -= 1
        return base
    frac = q - base
    if rng is not None:
        key = np.lexsort((rng.random(q.size), -frac))
    else:
        key = np.argsort(-frac, kind="stable")
    base[key[:left]] += 1
    return base


def allocate(weights, total: int, floor: int = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """Integer allocation of ``total`` units proportional to ``weights`` with a floor.

    Neyman allocation when ``weights`` are standard deviations. Sums to ``total``;
    every entry >= ``floor``. Raises ParameterError when total < floor*B.
    """
    w = np.asarray(weights, dtype=np.float64)
    if int(total) < int(floor) * w.size:
        raise ParameterError(f"budget of {int(total)} units cannot give {w.size} points "
                             f"the floor of {int(floor)} each; raise queries or lower the floor")
    return largest_remainder(proportional_with_floor(w, float(total), float(floor)), int(total), int(floor), rng)


def allocation_variance(variances, counts) -> float:
    """Closed form (1/B^2) sum_i v_i/q_i of the batch-mean estimator's variance."""
    v = np.asarray(variances, dtype=np.float64)
    q = np.asarray(counts, dtype=np.float64)
    return float((v / q).sum() / v.size ** 2)
