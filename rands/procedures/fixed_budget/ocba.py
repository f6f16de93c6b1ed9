"""OCBA: optimal computing budget allocation (Chen, Lin, Yucesan & Chick 2000).

Rule (budget T, first-stage size n0, increment Delta):
n0 samples of every system; then, while budget is left, compute the OCBA target allocation
for the total T_l + Delta from the current sample means and standard deviations,

    b = argmax_i mean_i,   d_i = mean_b - mean_i,
    N_i / N_j = (s_i / d_i)^2 / (s_j / d_j)^2          (i, j != b),
    N_b = s_b sqrt(sum_{i != b} N_i^2 / s_i^2),

and give the Delta new samples to the systems furthest below their targets (systems already
above target get none and the others' targets are rescaled; largest remainders round the
shares to integers summing to Delta). Select the largest mean at the end.

Guarantee: none at a finite budget. The allocation asymptotically maximises a Bonferroni
approximation of PCS; the procedure is consistent when every system keeps being sampled.
Its budget must grow like k log k to keep PCS away from 0 as k grows (Hong, Jiang & Zhong
2022). CRN is allowed (the allocation ignores correlation).
"""
from __future__ import annotations

import numba
import numpy as np

from ...errors import check_int
from ...params import CRN, ints, optional
from ..base import Procedure, ProcedureOutput, check_budget
from ._common import argmax_first, draw_chunked, restored_state


def ocba_ratios(means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """Unnormalised OCBA allocation weights (Chen et al. 2000) for the given estimates."""
    k = means.shape[0]
    b = argmax_first(means)
    scale = max(float(np.nanmax(np.abs(means))), 1.0)
    d = means[b] - means
    d = np.maximum(d, 1e-12 * scale)          # ties with the leader: treat as a tiny gap
    sds = np.maximum(np.nan_to_num(sds, nan=0.0), 0.0)
    r = (sds / d) ** 2
    r[b] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(sds > 0, r * r / (sds * sds), 0.0)
    r[b] = sds[b] * np.sqrt(terms.sum())
    if not np.isfinite(r).all() or r.sum() <= 0:
        return np.ones(k)
    return r


def ocba_increment(means: np.ndarray, sds: np.ndarray, n: np.ndarray, delta: int) -> np.ndarray:
    """Integer allocation of ``delta`` new samples toward the OCBA targets for sum(n) + delta.

    Systems whose target is below their current count are fixed at their count and the
    others share the rest in proportion to their weights (iterated until stable); shares
    are rounded by largest remainders (lowest index on ties). Returns counts summing to delta.
    """
    r = ocba_ratios(means, sds)
    n = n.astype(np.float64)
    total = n.sum() + delta
    idx = np.flatnonzero(r > 0)
    if idx.shape[0] == 0:
        idx = np.arange(r.shape[0])
        r = np.ones_like(r)
    n_all = n.sum()                  # counts are integers: these sums are exact in any order
    while True:                      # systems above their target keep their count
        budget = total - (n_all - n[idx].sum())
        target = r[idx] * (budget / r[idx].sum())
        below = target < n[idx]
        if not below.any():
            break
        idx = idx[~below]
    add = np.zeros(r.shape[0])
    add[idx] = np.maximum(target - n[idx], 0.0)
    base = np.floor(add).astype(np.int64)
    rest = int(delta - base.sum())
    if rest > 0:     # only the active systems have fractional parts
        base[idx[_top_first_nb(add[idx] - base[idx], rest)]] += 1
    elif rest < 0:   # floating error: remove from the largest
        base[_top_first_nb(base.astype(np.float64), -rest)] -= 1
    return base


@numba.njit(cache=True)
def _refresh_stats(systems, n, sums, sumsq, mean, sd):
    """Recompute mean and standard deviation (ddof 1; 0 below two samples) of the given
    systems from running counts, sums and sums of squares."""
    for i in systems:
        mean[i] = sums[i] / n[i]
        v = (sumsq[i] - sums[i] * sums[i] / n[i]) / (n[i] - 1.0) if n[i] >= 2 else 0.0
        sd[i] = np.sqrt(v) if v > 0.0 else 0.0


@numba.njit(cache=True)
def _ocba_step(n, sums, sumsq, delta, add):
    """One OCBA iteration from running statistics, compiled: the rule of :func:`ocba_ratios`
    and :func:`ocba_increment` (same formulas and tie rules), written into ``add``."""
    k = n.shape[0]
    mean = np.empty(k)
    sd = np.empty(k)
    _refresh_stats(np.arange(k), n, sums, sumsq, mean, sd)
    systems, counts = _ocba_allocate(n, mean, sd, delta, _workspace(k))
    add[:] = 0.0
    for j in range(systems.shape[0]):
        add[systems[j]] = counts[j]
    return add


@numba.njit(cache=True)
def _workspace(k):
    """Scratch arrays for :func:`_ocba_allocate` (allocated once per run, not per iteration)."""
    return np.empty(k), np.empty(k, dtype=np.int64), np.empty(k), np.empty(k)


@numba.njit(cache=True)
def _ocba_allocate(n, mean, sd, delta, work):
    """The OCBA allocation of ``delta`` samples from current means and standard deviations:
    (systems, counts) of the active systems, counts summing to ``delta`` (some may be 0).

    Water filling runs on compact copies of the active systems, whose set shrinks
    geometrically; its compaction is branch-free. One call costs a few passes over k."""
    r, act_i, act_r, act_n = work
    k = n.shape[0]
    b = 0
    best = -np.inf
    scale = 1.0
    n_all = 0.0
    for i in range(k):
        if mean[i] > best:
            best = mean[i]
            b = i
        if abs(mean[i]) > scale:
            scale = abs(mean[i])
        n_all += n[i]
    terms = 0.0
    for i in range(k):
        d = max(mean[b] - mean[i], 1e-12 * scale)
        r[i] = (sd[i] / d) ** 2
        if i != b and sd[i] > 0.0:
            terms += r[i] * r[i] / (sd[i] * sd[i])
    r[b] = sd[b] * np.sqrt(terms)
    total_r = 0.0
    ok = True
    for i in range(k):
        if not np.isfinite(r[i]):
            ok = False
        total_r += r[i]
    if not ok or total_r <= 0.0:
        r[:] = 1.0
    total = n_all + delta
    m = 0                     # active systems (r > 0), in index order
    n_act = 0.0
    r_act = 0.0
    for i in range(k):
        if r[i] > 0.0:
            act_i[m] = i
            act_r[m] = r[i]
            act_n[m] = n[i]
            m += 1
            n_act += n[i]
            r_act += r[i]
    while True:               # systems above their target keep their count (water filling)
        scale_r = (total - (n_all - n_act)) / r_act
        keep = 0
        n_next = 0.0
        r_next = 0.0
        for j in range(m):
            a_r = act_r[j]
            a_n = act_n[j]
            stay = a_r * scale_r >= a_n
            act_i[keep] = act_i[j]
            act_r[keep] = a_r
            act_n[keep] = a_n
            n_next += a_n if stay else 0.0
            r_next += a_r if stay else 0.0
            keep += stay
        if keep == m:
            break
        m = keep
        n_act = n_next
        r_act = r_next
    add = np.empty(m, dtype=np.int64)
    placed = 0
    frac = np.empty(m)
    for j in range(m):
        a = max(act_r[j] * scale_r - act_n[j], 0.0)
        whole = np.floor(a)
        add[j] = int(whole)
        frac[j] = a - whole
        placed += int(whole)
    rest = delta - placed
    if rest > 0:      # largest remainders, lowest index first on ties
        for j in _top_first_nb(frac, rest):
            add[j] += 1
    elif rest < 0:    # floating error: take from the largest
        for j in _top_first_nb(add.copy(), -rest):
            add[j] -= 1
    return act_i[:m].copy(), add


@numba.njit(cache=True)
def _top_first_nb(x, m):
    """Indices of the m largest values of x, lowest index first among equal values, in
    O(len(x)) (a selection, not a sort: the same set a stable argsort gives)."""
    size = x.shape[0]
    m = min(m, size)
    out = np.empty(max(m, 0), dtype=np.int64)
    if m <= 0:
        return out
    t = np.partition(x, size - m)[size - m]          # the m-th largest value
    c = 0
    for i in range(size):
        if x[i] > t:
            out[c] = i
            c += 1
    for i in range(size):
        if c == m:
            break
        if x[i] == t:
            out[c] = i
            c += 1
    return out


def default_increment(k: int) -> int:
    """OCBA's default Delta: max(100, ceil(k / 10)) samples per iteration."""
    return max(100, -(-int(k) // 10))


class OCBA(Procedure):
    """Sequential OCBA (Chen et al. 2000).

    Parameters
    ----------
    budget : total samples T (>= n0 * k).
    n0 : first-stage samples per system (>= 2, for sample variances).
    increment : Delta, samples allocated per iteration (>= 1); None (default): max(100, k / 10),
        so a run makes at most about 10 (T - n0 k) / k iterations whatever k is (each costs
        O(k) arithmetic: with a fixed Delta = 100, k = 10^5 and T = 2 10^6 took 10^4 of them).
    crn : common random numbers.
    """

    name = "ocba"
    kind = "fixed_budget"
    guarantee = ("none at finite budget; asymptotically maximises an approximate PCS; "
                 "consistent; needs budget of order k log k as k grows")
    assumptions = "normal-like outputs (uses means and standard deviations); CRN allowed"
    supports_crn = True
    reference = ("Chen, Lin, Yucesan & Chick (2000), Simulation budget allocation for further "
                 "enhancing the efficiency of ordinal optimization, DEDS 10:251-270")
    _parameter_constraints = {"budget": ints(2), "n0": ints(2), "increment": optional(ints(1)),
                              "crn": CRN}

    def __init__(self, budget: int = 1000, n0: int = 10, increment: int | None = None,
                 crn: bool = False):
        self.budget = budget
        self.n0 = n0
        self.increment = increment
        self.crn = crn
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_int("budget", self.budget, low=2)
        check_int("n0", self.n0, low=2)
        if self.increment is not None:
            check_int("increment", self.increment, low=1)
        super()._validate_params()

    def check_problem(self, problem) -> None:
        super().check_problem(problem)
        check_budget(self.budget, int(self.n0), problem.k)

    def budget_limit(self, problem) -> int:
        return int(self.budget)

    def run(self, ctx) -> ProcedureOutput:
        k = ctx.k
        N = int(self.budget)
        st = restored_state(ctx)
        it = int(st.get("iteration", -1))
        if it < 0:
            draw_chunked(ctx, np.arange(k, dtype=np.int64), int(self.n0))
            ctx.log("first stage", n0=int(self.n0))
            it = 0
            ctx.boundary({"iteration": 0})
        step = default_increment(k) if self.increment is None else int(self.increment)
        n = ctx.n.astype(np.float64)
        mean, sd = np.empty(k), np.empty(k)
        _refresh_stats(np.arange(k), n, ctx.sums, ctx.sumsq, mean, sd)
        work = _workspace(k)
        while ctx.total < N:
            delta = min(step, N - ctx.total)
            systems, counts = _ocba_allocate(n, mean, sd, int(delta), work)
            keep = counts > 0
            systems, counts = systems[keep], counts[keep]
            ctx.draw_counts(systems, counts, split=False)
            n[systems] += counts      # only the systems just sampled change their statistics
            _refresh_stats(systems, n, ctx.sums, ctx.sumsq, mean, sd)
            it += 1
            ctx.boundary({"iteration": it})
        ctx.log("allocation", iterations=it)
        return ProcedureOutput(best=argmax_first(ctx.means()), extras={"iterations": it})


__all__ = ["OCBA", "ocba_ratios", "ocba_increment"]
