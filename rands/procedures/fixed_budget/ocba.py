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

import numpy as np

from ...errors import check_int
from ...params import CRN, ints
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
    active = r > 0
    if not active.any():
        active[:] = True
        r = np.ones_like(r)
    while True:
        budget = total - n[~active].sum()
        target = np.where(active, budget * r / r[active].sum(), n)
        below = active & (target < n)
        if not below.any():
            break
        active &= ~below
    add = np.where(active, target - n, 0.0)
    add = np.maximum(add, 0.0)
    base = np.floor(add).astype(np.int64)
    rest = int(delta - base.sum())
    if rest > 0:
        frac = add - base
        order = np.lexsort((np.arange(frac.shape[0]), -frac))
        base[order[:rest]] += 1
    elif rest < 0:   # floating error: remove from the largest
        order = np.lexsort((np.arange(base.shape[0]), -base))
        for j in order[: -rest]:
            base[j] -= 1
    return base


class OCBA(Procedure):
    """Sequential OCBA (Chen et al. 2000).

    Parameters
    ----------
    budget : total samples T (>= n0 * k).
    n0 : first-stage samples per system (>= 2, for sample variances).
    increment : Delta, samples allocated per iteration (>= 1).
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
    _parameter_constraints = {"budget": ints(2), "n0": ints(2), "increment": ints(1), "crn": CRN}

    def __init__(self, budget: int = 1000, n0: int = 10, increment: int = 100, crn: bool = False):
        self.budget = budget
        self.n0 = n0
        self.increment = increment
        self.crn = crn
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_int("budget", self.budget, low=2)
        check_int("n0", self.n0, low=2)
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
        while ctx.total < N:
            delta = min(int(self.increment), N - ctx.total)
            add = ocba_increment(ctx.means(), np.sqrt(ctx.variances()), ctx.n, delta)
            nz = np.flatnonzero(add)
            ctx.draw_counts(nz, add[nz])
            it += 1
            ctx.boundary({"iteration": it})
        ctx.log("allocation", iterations=it)
        return ProcedureOutput(best=argmax_first(ctx.means()), extras={"iterations": it})


__all__ = ["OCBA", "ocba_ratios", "ocba_increment"]
