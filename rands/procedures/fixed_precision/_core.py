"""Shared building blocks of the fixed-precision procedures.

* :func:`rinott_stage` - Rinott's two-stage rule on a set of systems.
* :func:`kn_stage` - Kim & Nelson's fully sequential rule on a set of systems
  (CRN allowed), with the elimination loop compiled by numba.

Both keep their state in a flat dict (keys under a prefix) so a procedure can
nest them and checkpoint at every stage boundary; both keep their own sums,
so the samples a system received earlier in a run (e.g. earlier KT rounds)
never enter their decisions.
"""
from __future__ import annotations

from typing import Callable

import numba
import numpy as np

from ...errors import ParameterError, check_alpha, check_delta, check_int
from .constants import kn_h2, rinott_h


# --------------------------------------------------------------------------- validation
def check_common(alpha, delta, n0) -> None:
    check_alpha(alpha)
    check_delta(delta)
    if isinstance(n0, bool) or not isinstance(n0, (int, np.integer)):
        raise ParameterError(f"n0 (first-stage samples per system) must be an integer >= 2, got {n0!r}")
    check_int("n0", n0, low=2)


def _as_int(v) -> int:
    return int(np.asarray(v).item())


# --------------------------------------------------------------------------- Rinott
def rinott_stage(ctx, systems: np.ndarray, *, alpha: float, delta: float, n0: int, k_const: int | None,
                 st: dict, save: Callable[[], None], prefix: str = "") -> int:
    """Rinott (1978) on ``systems`` (local ids of ctx); returns the position of the winner.

    Stage 1: n0 samples each; N_i = max(n0, ceil((h S_i / delta)^2)) with
    h = h(k_const, 1-alpha, n0-1) (k_const defaults to len(systems)); stage 2:
    N_i - n0 more; select the largest mean of these N_i samples.
    """
    systems = np.asarray(systems, dtype=np.int64)
    m = systems.shape[0]
    if m == 1:
        return 0
    p = prefix
    h = rinott_h(int(k_const or m), 1.0 - alpha, n0 - 1)
    if _as_int(st.get(p + "stage", 0)) < 1:
        x = ctx.draw(systems, n0)
        st[p + "sums"] = x.sum(axis=1)
        s2 = x.var(axis=1, ddof=1)
        st[p + "N"] = np.maximum(n0, np.ceil(h * h * s2 / (delta * delta))).astype(np.int64)
        st[p + "stage"] = 1
        ctx.log(p + "rinott_stage1", systems=m, h=h, n0=n0)
        save()
    if _as_int(st[p + "stage"]) < 2:
        n_tot = np.asarray(st[p + "N"], dtype=np.int64)
        before = ctx.sums[systems].copy()
        ctx.draw_counts(systems, n_tot - n0)
        st[p + "sums"] = np.asarray(st[p + "sums"], dtype=np.float64) + (ctx.sums[systems] - before)
        st[p + "stage"] = 2
        ctx.log(p + "rinott_stage2", max_N=int(n_tot.max()), mean_N=float(n_tot.mean()))
        save()
    means = np.asarray(st[p + "sums"], dtype=np.float64) / np.asarray(st[p + "N"], dtype=np.float64)
    return int(np.argmax(means))


# --------------------------------------------------------------------------- KN
@numba.njit(cache=True)
def _nearest_sq_dist(c):
    """min_{l != i} |c_i - c_l|^2 for every row i (O(k^2 n0) once, O(k) memory)."""
    k, n0 = c.shape
    out = np.full(k, np.inf)
    for i in range(k):
        for l in range(i + 1, k):
            d = 0.0
            for t in range(n0):
                e = c[i, t] - c[l, t]
                d += e * e
            if d < out[i]:
                out[i] = d
            if d < out[l]:
                out[l] = d
    return out


@numba.njit(cache=True)
def _kn_screen(alive_idx, sums, c, a, lmin, h2, delta, r, inv_nu, keep):
    """One KN screening: keep[j] = False if system alive_idx[j] is eliminated.

    i is eliminated by l if sum_l - sum_i > max(0, h2 S_il^2 / (2 delta) - delta r / 2),
    S_il^2 = |c_i - c_l|^2 / (n0 - 1) from the centred first-stage rows c.
    Candidates l are scanned in decreasing order of their sums, stopping at the
    first l with sum_l - sum_i <= max(0, h2 lmin_i (n0-1)^-1 / (2 delta) - delta r / 2),
    lmin_i <= min_l |c_i - c_l|^2 (no later l can eliminate i).
    """
    m = alive_idx.shape[0]
    s = np.empty(m)
    for j in range(m):
        s[j] = -sums[alive_idx[j]]
    order = np.argsort(s)
    n0 = c.shape[1]
    coef = h2 / (2.0 * delta) * inv_nu
    off = delta * r / 2.0
    for jj in range(m):
        jpos = order[jj]
        i = alive_idx[jpos]
        si = sums[i]
        ai = a[i]
        sai = np.sqrt(ai)
        stop = max(0.0, coef * lmin[i] - off)
        out = False
        for ll in range(m):
            l = alive_idx[order[ll]]
            d = sums[l] - si
            if d <= stop:
                break
            sal = np.sqrt(a[l])
            # bounds from | |c_i| - |c_l| | <= |c_i - c_l| <= |c_i| + |c_l|
            if d <= coef * (sai - sal) ** 2 - off:
                continue
            if d > coef * (sai + sal) ** 2 - off:
                out = True
                break
            dot = 0.0
            for t in range(n0):
                dot += c[i, t] * c[l, t]
            if d > coef * (ai + a[l] - 2.0 * dot) - off:
                out = True
                break
        keep[jpos] = not out
    return keep


def kn_stage(ctx, systems: np.ndarray, *, alpha: float, delta: float, n0: int, crn: bool,
             st: dict, save: Callable[[], None], prefix: str = "") -> int:
    """Kim & Nelson (2001) on ``systems`` (local ids of ctx); returns the winner's position.

    n0 samples each; S_il^2 = sample variance of X_i - X_l over them (from the
    centred k x n0 first-stage matrix, never a k x k matrix); then one sample
    per survivor per stage with the screening above until one survives.
    Under CRN all draws use common replication indices start, start+1, ...
    (start = the largest next replication among ``systems``), so the systems'
    r-th samples share random numbers. PCS >= 1-alpha under the IZ, normal data.
    """
    systems = np.asarray(systems, dtype=np.int64)
    m = systems.shape[0]
    if m == 1:
        return 0
    p = prefix
    h2 = kn_h2(m, alpha, n0)
    if p + "r" not in st:
        base = int(ctx.next_rep[systems].max()) if crn else -1
        x = ctx.draw(systems, n0, start=base if crn else None)
        c = x - x.mean(axis=1, keepdims=True)
        st[p + "base"] = base
        st[p + "c"] = c
        st[p + "a"] = np.einsum("ij,ij->i", c, c)
        st[p + "sums"] = x.sum(axis=1)
        st[p + "alive"] = np.ones(m, dtype=bool)
        st[p + "r"] = n0
        ctx.log(p + "kn_stage1", systems=m, h2=h2, eta=h2 / (2 * (n0 - 1)), n0=n0, crn=bool(crn))
        save()
    base = _as_int(st[p + "base"])
    c = np.ascontiguousarray(st[p + "c"], dtype=np.float64)
    a = np.ascontiguousarray(st[p + "a"], dtype=np.float64)
    sums = np.array(st[p + "sums"], dtype=np.float64)
    alive = np.array(st[p + "alive"], dtype=bool)
    r = _as_int(st[p + "r"])
    st[p + "sums"], st[p + "alive"] = sums, alive
    inv_nu = 1.0 / (n0 - 1)
    # nearest-neighbour bound on S_il^2 (only pruning: decisions do not depend on it)
    lmin = _nearest_sq_dist(c) if m >= 200 else np.zeros(m)
    # past this stage every continuation region has closed (W_il = 0)
    r_close = int(np.floor(h2 * 4.0 * a.max() * inv_nu / (delta * delta))) + 1
    while True:
        idx = np.flatnonzero(alive)
        if idx.shape[0] > 1:
            keep = _kn_screen(idx, sums, c, a, lmin, h2, delta, float(r), inv_nu,
                              np.ones(idx.shape[0], dtype=np.bool_))
            alive[idx[~keep]] = False
            idx = idx[keep]
        if idx.shape[0] <= 1 or r >= r_close:
            break  # beyond r_close only exact ties remain: the lowest index wins
        v = ctx.draw(systems[idx], 1, start=(base + r) if crn else None)
        sums[idx] += v[:, 0]
        r += 1
        st[p + "r"] = r
        save()
    idx = np.flatnonzero(alive)
    ctx.log(p + "kn_done", stages=r - n0, survivors=int(idx.shape[0]))
    return int(idx[np.argmax(sums[idx])])
