"""Many KN matches advancing together: the bulk form of Kim & Nelson's screening.

A KT round, the conquer step of DC and P3C and a global KN are all the same
computation: independent KN matches (groups of systems) that start with n0
samples each and then take one sample per survivor per stage until one system
is left in each group. :func:`kn_matches` runs every match of a call at once:

* one draw per block for the survivors of every open match;
* a block holds ``lookahead`` stages: sample t of system i is a pure function
  of (seed, i, replication), so drawing it before it is needed changes nothing;
  the compiled kernel screens the block stage by stage and records, for each
  system, how many of its block samples the procedure used (the samples it
  would have drawn with ``lookahead=1``). Eliminations, winners and the used
  sample sizes do not depend on ``lookahead``; only the samples simulated do.
* screening in large groups is two-step: once per block a pass over the pairs
  keeps only those that could eliminate within the block (a pair (i, l) can
  only if max_t S_l - min_t S_i > max(0, h^2 S_il^2 / (2 delta) - delta r_end / 2));
  then each stage checks only those candidate pairs. The decisions are those of
  the all-pairs rule at every stage.

Screening rule (Kim & Nelson 2001): at stage r, i is eliminated when some l
alive at the start of that screening has
sum_l - sum_i > max(0, h^2 S_il^2 / (2 delta) - delta r / 2), with S_il^2 the
first-stage variance of X_i - X_l; eliminations within a stage are
simultaneous. A group stops when one system is left or every continuation
region has closed (r >= r_close; then the largest sum wins, lowest index on a
tie).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from ...sampling import SampleStats
from .constants import kn_h2

STATS_FIELDS = ("n", "sums", "sumsq", "next_rep", "total", "simulated")

SMALL_GROUP = 48          # groups up to this size are screened all-pairs at every stage
SHIP_THRESHOLD_S = 0.05   # matches estimated cheaper than this run on the coordinator


@dataclass
class KNMatches:
    """State of a set of KN matches (rows grouped by match); converts to checkpoint arrays."""

    rows: np.ndarray      # local system id (in the context) of every row
    ptr: np.ndarray       # match g owns rows ptr[g]:ptr[g+1]
    h2: np.ndarray        # per match: h^2 of its size and alpha
    base: np.ndarray      # per match: first CRN replication (-1: independent sampling)
    r_close: np.ndarray   # per match: stage at which every continuation region is closed
    r: np.ndarray         # per match: samples per survivor so far
    winner: np.ndarray    # per match: winner's row offset in the match, -1 while open
    c: np.ndarray         # rows x n0: centred first-stage samples
    a: np.ndarray         # |c_i|^2
    sums: np.ndarray      # each row's sum of its samples in this match
    alive: np.ndarray     # row still in contention
    screened: np.ndarray  # per match: the first-stage screening has run

    FIELDS = ("rows", "ptr", "h2", "base", "r_close", "r", "winner", "c", "a", "sums", "alive",
              "screened")

    @property
    def n_matches(self) -> int:
        return int(self.ptr.shape[0] - 1)

    @property
    def open(self) -> np.ndarray:
        return self.winner < 0

    def winners(self) -> np.ndarray:
        """Local ids of the match winners (requires every match decided)."""
        return self.rows[self.ptr[:-1] + self.winner]

    def to_state(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {prefix + f: getattr(self, f) for f in self.FIELDS}

    @classmethod
    def from_state(cls, st: dict, prefix: str = "") -> "KNMatches":
        dtypes = {"h2": np.float64, "c": np.float64, "a": np.float64, "sums": np.float64,
                  "alive": np.bool_, "screened": np.bool_}
        vals = {}
        for f in cls.FIELDS:
            vals[f] = np.array(st[prefix + f], dtype=dtypes.get(f, np.int64))
        vals["c"] = np.ascontiguousarray(vals["c"])
        return cls(**vals)

    @classmethod
    def has_state(cls, st: dict, prefix: str = "") -> bool:
        return (prefix + "ptr") in st


def kn_start(ctx, groups: list[np.ndarray], *, alpha: float, delta: float, n0: int,
             crn: bool) -> KNMatches:
    """First stage of every match: n0 samples of each system in one draw.

    Under CRN each match draws replications base..base+n0-1 common to its systems
    (base = the largest next replication in the match), later stage r uses
    replication base + r, so the systems' r-th samples share random numbers.
    """
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    ptr = np.zeros(sizes.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    rows = (np.concatenate([np.asarray(g, dtype=np.int64) for g in groups]) if groups
            else np.zeros(0, dtype=np.int64))
    match_of = np.repeat(np.arange(sizes.shape[0]), sizes)
    if crn:
        base = np.maximum.reduceat(ctx.next_rep[rows], ptr[:-1]) if rows.size else ptr[:-1].copy()
        x = ctx.draw(rows, n0, start=base[match_of])
    else:
        base = np.full(sizes.shape[0], -1, dtype=np.int64)
        x = ctx.draw(rows, n0)
    c = np.ascontiguousarray(x - x.mean(axis=1, keepdims=True))
    a = np.einsum("ij,ij->i", c, c)
    h2_of = {int(s): kn_h2(int(s), alpha, n0) for s in np.unique(sizes) if s >= 2}
    h2 = np.array([h2_of.get(int(s), 0.0) for s in sizes])
    amax = np.maximum.reduceat(a, ptr[:-1]) if rows.size else np.zeros(0)
    inv_nu = 1.0 / (n0 - 1)
    r_close = (np.floor(h2 * 4.0 * amax * inv_nu / (delta * delta)) + 1).astype(np.int64)
    winner = np.where(sizes == 1, 0, -1).astype(np.int64)
    return KNMatches(rows=rows, ptr=ptr, h2=h2, base=base.astype(np.int64), r_close=r_close,
                     r=np.full(sizes.shape[0], n0, dtype=np.int64), winner=winner, c=c, a=a,
                     sums=x.sum(axis=1), alive=np.ones(rows.shape[0], dtype=bool),
                     screened=sizes == 1)


def kn_advance(ctx, m: KNMatches, *, delta: float, n0: int, lookahead: int | None,
               save: Callable[[], None] | None = None) -> None:
    """Run every open match of ``m`` to its end, one block of stages at a time.

    ``lookahead``: stages per block (None: chosen from the measured cost of a
    sample, see :func:`rands.lookahead.choose`). ``save`` is called at every block
    boundary with ``m`` complete (a checkpoint may be written there).
    """
    from ...lookahead import LookaheadPolicy

    policy = LookaheadPolicy(lookahead, ctx)
    inv_nu = 1.0 / (n0 - 1)
    coef_all = m.h2 / (2.0 * delta) * inv_nu
    match_of = np.repeat(np.arange(m.n_matches), np.diff(m.ptr))
    crn = bool(m.base.shape[0] and m.base[0] >= 0)
    while True:
        open_m = np.flatnonzero(m.open)
        if open_m.shape[0] == 0:
            return
        act = np.flatnonzero(m.alive & m.open[match_of])
        am = match_of[act]
        # active rows are grouped by match (rows are stored grouped): pointers into act
        counts = np.bincount(am, minlength=m.n_matches)[open_m]
        gptr = np.zeros(open_m.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=gptr[1:])
        sizes = counts
        # the first block of a fresh start also holds the first-stage screening (column 0)
        new0 = not bool(m.screened[open_m].all())
        L = policy.choose(rows=int(act.shape[0]),
                          max_stages=int((m.r_close[open_m] - m.r[open_m]).max()),
                          pair_work=float((sizes[sizes > SMALL_GROUP].astype(np.float64) ** 2).sum() / 2))
        if new0 and policy.requested == 1:
            L = 0     # one stage at a time: the first-stage screening comes before any draw
        systems = m.rows[act]
        if L > 0:
            starts = (m.base[am] + m.r[am]) if crn else None
            t0 = time.perf_counter()
            vals = ctx.draw_ahead(systems, L, start=starts)
            policy.drew(time.perf_counter() - t0, vals.size)
        else:
            vals = np.empty((act.shape[0], 0))
        P = np.empty((L + int(new0), act.shape[0]))    # stage-major: a stage's sums are contiguous
        P[0] = m.sums[act]
        _cumulate(m.sums[act], vals, P[int(new0):])
        alive = np.ones(act.shape[0], dtype=np.bool_)
        used = np.zeros(act.shape[0], dtype=np.int64)
        gdone = np.zeros(open_m.shape[0], dtype=np.bool_)
        r_end = np.zeros(open_m.shape[0], dtype=np.int64)
        r_first = m.r[open_m] + (0 if new0 else 1)
        gwin = np.full(open_m.shape[0], -1, dtype=np.int64)
        n_elim = _kn_block(gptr, P, m.c[act], m.a[act], coef_all[open_m], float(delta), r_first,
                           m.r_close[open_m], int(new0), alive, used, gdone, r_end, gwin)
        if L > 0:
            ctx.accept(systems, vals, used, start=starts)
            has = used > 0
            m.sums[act[has]] = P[used[has] - 1 + int(new0), np.flatnonzero(has)]
        m.r[open_m] = r_end
        m.alive[act[~alive]] = False
        m.screened[open_m] = True
        fin = np.flatnonzero(gdone)
        m.winner[open_m[fin]] = act[gptr[fin] + gwin[fin]] - m.ptr[open_m[fin]]
        policy.observe(eliminated=int(n_elim), stages=max(L, 1))
        ctx.report_progress(contention=int(m.alive[m.open[match_of]].sum()) + int((~m.open).sum()))
        if save is not None:
            save()


def kn_matches(ctx, groups: list[np.ndarray], *, alpha: float, delta: float, n0: int, crn: bool,
               lookahead: int | None = None, st: dict | None = None, prefix: str = "",
               save: Callable[[], None] | None = None) -> np.ndarray:
    """KN (Kim & Nelson 2001) in every group of local ids; returns each winner's position in its group.

    ``st`` (a dict) holds the state under ``prefix`` between block boundaries, so a
    checkpointed run resumes mid-match; ``save`` is called at every boundary.
    PCS >= 1-alpha per match under the IZ, normal outputs, independent or CRN.
    """
    st = {} if st is None else st
    if KNMatches.has_state(st, prefix):
        m = KNMatches.from_state(st, prefix)
    else:
        m = kn_start(ctx, groups, alpha=alpha, delta=delta, n0=n0, crn=crn)
        ctx.log(prefix + "kn_stage1", matches=m.n_matches, systems=int(m.rows.shape[0]), n0=n0,
                crn=bool(crn), h2=float(m.h2.max()) if m.n_matches else 0.0)
    inner = None
    if save is not None:
        def inner() -> None:
            st.update(m.to_state(prefix))
            save()
        inner()
    kn_advance(ctx, m, delta=delta, n0=n0, lookahead=lookahead, save=inner)
    st.update(m.to_state(prefix))
    return m.winner.copy()


def run_kn_matches(ctx, groups: list[np.ndarray], *, alpha: float, delta: float, n0: int, crn: bool,
                   lookahead: int | None = None, st: dict | None = None, prefix: str = "",
                   save: Callable[[], None] | None = None) -> np.ndarray:
    """:func:`kn_matches` here or on the executor's workers; each winner's position in its group.

    On the coordinator (in bulk, checkpointed at block boundaries, progress
    reported; the executor still simulates the blocks) unless the executor has
    several workers and the matches are estimated dearer than SHIP_THRESHOLD_S (or the
    executor's ``group_ship_threshold_s``):
    then they are dealt into chunks (largest first) that run whole on the
    workers. Both give the same winners: a match depends only on its systems'
    samples, which depend only on (seed, system, replication).
    """
    workers = int(getattr(ctx.executor, "n_workers", 1))
    n_sys = sum(len(x) for x in groups)
    cost = ctx.cost_per_sample()
    est = n_sys * 8 * n0 * (cost if cost == cost else 1e-3)
    resuming = st is not None and KNMatches.has_state(st, prefix)
    threshold = float(getattr(ctx.executor, "group_ship_threshold_s", SHIP_THRESHOLD_S))
    if workers > 1 and len(groups) > 1 and est > threshold and not resuming:
        n_chunks = min(len(groups), 4 * workers)
        sizes = np.array([len(x) for x in groups])
        chunks = [list(range(j, len(groups), n_chunks)) for j in range(n_chunks)]
        members = [np.concatenate([groups[i] for i in ch]) for ch in chunks]
        outs = ctx.run_groups(kn_match_chunk, members, costs=[float(len(x)) for x in members],
                              per_task=[{"sizes": sizes[ch].tolist()} for ch in chunks],
                              alpha=alpha, delta=delta, n0=n0, crn=crn, lookahead=lookahead)
        winners = np.zeros(len(groups), dtype=np.int64)
        for ch, out in zip(chunks, outs):
            winners[ch] = out
        return winners
    # here: on a child context (the statistics of these matches start at zero and are merged
    # at the end, the same arithmetic as a worker's), checkpointed at every block boundary
    st = {} if st is None else st
    rows = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups])
    key = prefix + "stats_"
    restored = (SampleStats.from_dict({f: st[key + f] for f in STATS_FIELDS})
                if resuming and (key + "n") in st else None)
    child = ctx.child(rows, restored)
    bounds = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
    local = [np.arange(bounds[j], bounds[j + 1]) for j in range(len(groups))]
    inner = None
    if save is not None:
        def inner() -> None:
            st.update({key + f: v for f, v in child.stats.to_dict().items()})
            save()
    winners = kn_matches(child, local, alpha=alpha, delta=delta, n0=n0, crn=crn, lookahead=lookahead,
                         st=st, prefix=prefix, save=inner)
    ctx.merge_child(child, rows)
    for f in STATS_FIELDS:
        st.pop(key + f, None)
    return winners


def kn_match_chunk(ctx, *, sizes: list[int], alpha: float, delta: float, n0: int, crn: bool,
                   lookahead: int | None) -> list[int]:
    """Several KN matches on one sub-context whose systems are the matches' systems in
    order (``sizes`` of each); each winner's position in its match. Module-level so
    that parallel backends can run it on other processes or ranks."""
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    groups = [np.arange(bounds[j], bounds[j + 1]) for j in range(len(sizes))]
    return kn_matches(ctx, groups, alpha=alpha, delta=delta, n0=n0, crn=crn,
                      lookahead=lookahead).tolist()


@numba.njit(cache=True)
def _cumulate(sums, vals, P):
    """P[t, j] = sums[j] + vals[j, 0] + ... + vals[j, t], added in stage order."""
    m, L = vals.shape
    for j in range(m):
        s = sums[j]
        for t in range(L):
            s += vals[j, t]
            P[t, j] = s


@numba.njit(cache=True)
def _thresholds(j0, j1, c, a, coef):
    """coef * (a_i + a_l - 2 c_i.c_l) for every pair of rows j0..j1 (a small group)."""
    mg = j1 - j0
    n0 = c.shape[1]
    T = np.empty((mg, mg))
    for i in range(mg):
        T[i, i] = 0.0
        for l in range(i + 1, mg):
            dot = 0.0
            for u in range(n0):
                dot += c[j0 + i, u] * c[j0 + l, u]
            v = coef * (a[j0 + i] + a[j0 + l] - 2.0 * dot)
            T[i, l] = v
            T[l, i] = v
    return T


@numba.njit(cache=True)
def _apply_eliminations(elim, alive, j0):
    """End of a stage's (simultaneous) screening: rows flagged in elim leave; returns how many."""
    gone = 0
    for i in range(elim.shape[0]):
        if elim[i]:
            elim[i] = False
            alive[j0 + i] = False
            gone += 1
    return gone


@numba.njit(cache=True)
def _block_small(j0, j1, P, c, a, coef, delta, r_first, r_close, new0, alive, used):
    """All-pairs screening of one small group through the block; returns (done, r_end, eliminated)."""
    mg = j1 - j0
    ncol = P.shape[0]
    T = _thresholds(j0, j1, c, a, coef)
    elim = np.zeros(mg, dtype=np.bool_)
    nalive = mg
    gone = 0
    r = r_first - 1
    for t in range(ncol):
        r = r_first + t
        if t >= new0:
            for i in range(mg):
                if alive[j0 + i]:
                    used[j0 + i] = t + 1 - new0
        off = delta * r / 2.0
        for i in range(mg):
            if not alive[j0 + i]:
                continue
            si = P[t, j0 + i]
            for l in range(mg):
                if l == i or not alive[j0 + l]:
                    continue
                d = P[t, j0 + l] - si
                if d > 0.0 and d > T[i, l] - off:
                    elim[i] = True
                    break
        e = _apply_eliminations(elim, alive, j0)
        nalive -= e
        gone += e
        if nalive <= 1 or r >= r_close:
            return True, r, gone
    return False, r, gone


@numba.njit(cache=True, fastmath=True)
def _partial_gap(smax_sorted, q0, q1, q2, q3, n, base, x0, x1, x2, x3, coef, tmp):
    """tmp[k] = smax[k] - base - coef * (4-coordinate partial squared distance), k < n (vectorized)."""
    for k in range(n):
        e0 = q0[k] - x0
        e1 = q1[k] - x1
        e2 = q2[k] - x2
        e3 = q3[k] - x3
        tmp[k] = smax_sorted[k] - base - coef * (e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3)


@numba.njit(cache=True)
def _exact_candidates(i, j0, n_above, tmp, order, sm, smin_i, off_end, c, a, coef, buf_l, buf_t):
    """Rows l (sorted position k < n_above) that could eliminate row i within the block,
    with their thresholds coef * (a_i + a_l - 2 c_i.c_l); tmp[k] is a lower-bound filter."""
    n0 = c.shape[1]
    slack = 1e-9 * (abs(smin_i) + abs(off_end) + 1.0)
    ai = a[j0 + i]
    nb = 0
    for k in range(n_above):
        if tmp[k] <= -slack:
            continue
        l = order[k]
        if l == i:
            continue
        dot = 0.0
        for u in range(n0):
            dot += c[j0 + i, u] * c[j0 + l, u]
        thr = coef * (ai + a[j0 + l] - 2.0 * dot)
        gap = sm[k] - smin_i
        if gap > 0.0 and gap > thr - off_end:
            buf_l[nb] = l
            buf_t[nb] = thr
            nb += 1
    return nb


@numba.njit(cache=True)
def _grown(arr, n, cap):
    out = np.empty(cap, dtype=arr.dtype)
    out[:n] = arr[:n]
    return out


@numba.njit(cache=True)
def _block_large(j0, j1, P, c, a, coef, delta, r_first, r_close, new0, alive, used):
    """Candidate-pair screening of one large group through the block; returns (done, r_end, eliminated)."""
    mg = j1 - j0
    ncol = P.shape[0]
    n0 = c.shape[1]
    smax = np.empty(mg)
    smin = np.empty(mg)
    for i in range(mg):
        hi = P[0, j0 + i]
        lo = hi
        for t in range(1, ncol):
            v = P[t, j0 + i]
            if v > hi:
                hi = v
            if v < lo:
                lo = v
        smax[i] = hi
        smin[i] = lo
    off_end = delta * (r_first + ncol - 1) / 2.0
    order = np.argsort(-smax)
    sm = smax[order]
    q = np.zeros((4, mg))
    for k in range(mg):
        for u in range(min(4, n0)):
            q[u, k] = c[j0 + order[k], u]
    # candidate pairs (i eliminated by l), grouped by i
    cand_ptr = np.zeros(mg + 1, dtype=np.int64)
    cap = 4 * mg + 16
    cand_l = np.empty(cap, dtype=np.int64)
    cand_t = np.empty(cap)
    ncand = 0
    tmp = np.empty(mg)
    neg_sm = -sm
    buf_l = np.empty(mg, dtype=np.int64)
    buf_t = np.empty(mg)
    x = np.zeros(4)
    for i in range(mg):
        # l with smax_l > smin_i come first in the sorted order
        n_above = np.searchsorted(neg_sm, -smin[i], side="left")
        if n_above > 0:
            for u in range(min(4, n0)):
                x[u] = c[j0 + i, u]
            _partial_gap(sm, q[0], q[1], q[2], q[3], n_above, smin[i] - off_end, x[0], x[1], x[2], x[3],
                         coef, tmp)
            nb = _exact_candidates(i, j0, n_above, tmp, order, sm, smin[i], off_end, c, a, coef,
                                   buf_l, buf_t)
            if ncand + nb > cap:
                cap = max(2 * cap, ncand + nb)
                cand_l = _grown(cand_l, ncand, cap)
                cand_t = _grown(cand_t, ncand, cap)
            cand_l[ncand:ncand + nb] = buf_l[:nb]
            cand_t[ncand:ncand + nb] = buf_t[:nb]
            ncand += nb
        cand_ptr[i + 1] = ncand
    elim = np.zeros(mg, dtype=np.bool_)
    nalive = 0
    for i in range(mg):
        if alive[j0 + i]:
            nalive += 1
    gone = 0
    r = r_first - 1
    for t in range(ncol):
        r = r_first + t
        if t >= new0:
            for i in range(mg):
                if alive[j0 + i]:
                    used[j0 + i] = t + 1 - new0
        off = delta * r / 2.0
        for i in range(mg):
            if not alive[j0 + i] or cand_ptr[i] == cand_ptr[i + 1]:
                continue
            si = P[t, j0 + i]
            for p in range(cand_ptr[i], cand_ptr[i + 1]):
                l = cand_l[p]
                if not alive[j0 + l]:
                    continue
                d = P[t, j0 + l] - si
                if d > 0.0 and d > cand_t[p] - off:
                    elim[i] = True
                    break
        e = _apply_eliminations(elim, alive, j0)
        nalive -= e
        gone += e
        if nalive <= 1 or r >= r_close:
            return True, r, gone
    return False, r, gone


@numba.njit(cache=True)
def _kn_block(gptr, P, c, a, coef, delta, r_first, r_close, new0, alive, used, gdone, r_end, gwin):
    """Screen every match through the block's columns of P (running sums at stages
    r_first[g], r_first[g]+1, ...); the first ``new0`` columns hold no new sample.
    Sets alive/used per row and done/r_end/winner offset per match; returns the number eliminated."""
    gone = 0
    for g in range(gptr.shape[0] - 1):
        j0 = gptr[g]
        j1 = gptr[g + 1]
        if j1 - j0 <= SMALL_GROUP:
            done, r, e = _block_small(j0, j1, P, c, a, coef[g], delta, r_first[g], r_close[g], new0,
                                      alive, used)
        else:
            done, r, e = _block_large(j0, j1, P, c, a, coef[g], delta, r_first[g], r_close[g], new0,
                                      alive, used)
        gdone[g] = done
        r_end[g] = r
        gone += e
        if done:   # the largest sum among the survivors wins (lowest row on a tie)
            t = r - r_first[g]
            best = -1
            for j in range(j0, j1):
                if alive[j] and (best < 0 or P[t, j] > P[t, best]):
                    best = j
            gwin[g] = best - j0
    return gone


__all__ = ["KNMatches", "kn_start", "kn_advance", "kn_matches", "run_kn_matches", "kn_match_chunk"]
