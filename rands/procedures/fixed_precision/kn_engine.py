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
sum_l - sum_i > max(0, h^2 S_il^2 / (2 c delta) - delta r / (2 c)), with S_il^2 the
first-stage variance of X_i - X_l and c the boundary parameter (default 1);
eliminations within a stage are simultaneous. The region for c is the c = 1
region for delta / c and h^2 / c^2 (both close at h^2 S_il^2 / delta^2), which is
how the kernels run it: a match stores h^2 / c^2 and screens with delta / c.
A group stops when one system is left or every continuation region has closed
(r >= r_close; then the largest sum wins, lowest index on a tie).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from ...progress import kn_remaining
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
             crn: bool, head_sums: np.ndarray | None = None, head_n: int = 0, c: int = 1) -> KNMatches:
    """First stage of every match: n0 samples of each system in one draw.

    Under CRN each match draws replications base..base+n0-1 common to its systems
    (base = the largest next replication in the match), later stage r uses
    replication base + r, so the systems' r-th samples share random numbers.

    Head start (``head_n > 0``, CRN only; off by default, KN unchanged): each row's
    running sum starts at ``head_sums`` (row order), the sums of ``head_n`` earlier
    CRN replications base-head_n..base-1 already counted by the caller (P3C's
    pilot), and the stage counter r at head_n + n0, so the first screening is at
    r = head_n + n0. S_il^2 and h^2 still come from the n0 fresh samples only.

    ``c``: KN's boundary parameter; the matches store h^2(c) / c^2 (the c = 1 form for
    delta / c, see the module docstring), so :func:`kn_advance` must get the same c.
    """
    cb = int(c)                     # the boundary parameter (c below is the centred first stage)
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    ptr = np.zeros(sizes.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    rows = (np.concatenate([np.asarray(g, dtype=np.int64) for g in groups]) if groups
            else np.zeros(0, dtype=np.int64))
    match_of = np.repeat(np.arange(sizes.shape[0]), sizes)
    if ctx.wants_estimates:         # the bar's first total: the first stage
        ctx.report_progress(remaining=int(rows.shape[0]) * n0)
    if crn:
        base = np.maximum.reduceat(ctx.next_rep[rows], ptr[:-1]) if rows.size else ptr[:-1].copy()
        x = ctx.draw(rows, n0, start=base[match_of])
    else:
        base = np.full(sizes.shape[0], -1, dtype=np.int64)
        x = ctx.draw(rows, n0)
    sums = x.sum(axis=1)
    if head_n:
        if not crn or head_sums is None or np.shape(head_sums) != (rows.shape[0],):
            raise ValueError("a KN head start needs CRN and one head sum per system")
        sums = sums + np.asarray(head_sums, dtype=np.float64)
        base = base - int(head_n)       # stage r draws replication base + r, as without it
    c = np.ascontiguousarray(x - x.mean(axis=1, keepdims=True))
    a = np.einsum("ij,ij->i", c, c)
    h2_of = {int(s): kn_h2(int(s), alpha, n0, cb) / (cb * cb) for s in np.unique(sizes) if s >= 2}
    h2 = np.array([h2_of.get(int(s), 0.0) for s in sizes])
    amax = np.maximum.reduceat(a, ptr[:-1]) if rows.size else np.zeros(0)
    inv_nu = 1.0 / (n0 - 1)
    d = delta / cb
    r_close = (np.floor(h2 * 4.0 * amax * inv_nu / (d * d)) + 1).astype(np.int64)
    winner = np.where(sizes == 1, 0, -1).astype(np.int64)
    return KNMatches(rows=rows, ptr=ptr, h2=h2, base=base.astype(np.int64), r_close=r_close,
                     r=np.full(sizes.shape[0], n0 + int(head_n), dtype=np.int64), winner=winner, c=c,
                     a=a, sums=sums, alive=np.ones(rows.shape[0], dtype=bool),
                     screened=sizes == 1)


def kn_advance(ctx, m: KNMatches, *, delta: float, n0: int, lookahead: int | None,
               save: Callable[[], None] | None = None, c: int = 1) -> None:
    """Run every open match of ``m`` to its end, one block of stages at a time.

    ``lookahead``: stages per block (None: chosen from the measured cost of a
    sample, see :func:`rands.lookahead.choose`). ``save`` is called at every block
    boundary with ``m`` complete (a checkpoint may be written there). ``c``: the
    boundary parameter ``m`` was started with (its matches screen with delta / c).
    """
    from ...lookahead import LookaheadPolicy

    delta = delta / c

    policy = LookaheadPolicy(lookahead, ctx)
    inv_nu = 1.0 / (n0 - 1)
    coef_all = m.h2 / (2.0 * delta) * inv_nu
    match_of = np.repeat(np.arange(m.n_matches), np.diff(m.ptr))
    crn = bool(m.base.shape[0] and m.base[0] >= 0)
    if ctx.wants_estimates:         # the first estimate, from the first-stage variances
        ctx.report_progress(remaining=kn_remaining(m, delta, n0))
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
        contention = int(m.alive[m.open[match_of]].sum()) + int((~m.open).sum())
        if ctx.wants_estimates:     # with the running estimate of what is left (for the bar)
            ctx.report_progress(contention=contention, remaining=kn_remaining(m, delta, n0))
        else:
            ctx.report_progress(contention=contention)
        if save is not None:
            save()


def kn_matches(ctx, groups: list[np.ndarray], *, alpha: float, delta: float, n0: int, crn: bool,
               lookahead: int | None = None, st: dict | None = None, prefix: str = "",
               save: Callable[[], None] | None = None, head_sums: np.ndarray | None = None,
               head_n: int = 0, c: int = 1) -> np.ndarray:
    """KN (Kim & Nelson 2001) in every group of local ids; returns each winner's position in its group.

    ``st`` (a dict) holds the state under ``prefix`` between block boundaries, so a
    checkpointed run resumes mid-match; ``save`` is called at every boundary.
    PCS >= 1-alpha per match under the IZ, normal outputs, independent or CRN.
    ``head_sums``, ``head_n``: an optional head start (see :func:`kn_start`); ``c``: KN's
    boundary parameter (default 1).
    """
    st = {} if st is None else st
    if KNMatches.has_state(st, prefix):
        m = KNMatches.from_state(st, prefix)
    else:
        m = kn_start(ctx, groups, alpha=alpha, delta=delta, n0=n0, crn=crn, head_sums=head_sums,
                     head_n=head_n, c=c)
        ctx.log(prefix + "kn_stage1", matches=m.n_matches, systems=int(m.rows.shape[0]), n0=n0,
                crn=bool(crn), h2=float(m.h2.max()) if m.n_matches else 0.0,
                **({"head_n": int(head_n)} if head_n else {}), **({"c": int(c)} if c != 1 else {}))
    inner = None
    if save is not None:
        def inner() -> None:
            st.update(m.to_state(prefix))
            save()
        inner()
    kn_advance(ctx, m, delta=delta, n0=n0, lookahead=lookahead, save=inner, c=c)
    st.update(m.to_state(prefix))
    return m.winner.copy()


def run_kn_matches(ctx, groups: list[np.ndarray], *, alpha: float, delta: float, n0: int, crn: bool,
                   lookahead: int | None = None, st: dict | None = None, prefix: str = "",
                   save: Callable[[], None] | None = None, head_sums: np.ndarray | None = None,
                   head_n: int = 0, c: int = 1) -> np.ndarray:
    """:func:`kn_matches` here or on the executor's workers; each winner's position in its group.

    On the coordinator (in bulk, checkpointed at block boundaries, progress
    reported; the executor still simulates the blocks) unless the executor has
    several workers and the matches are estimated dearer than SHIP_THRESHOLD_S (or the
    executor's ``group_ship_threshold_s``):
    then they are dealt into chunks (largest first) that run whole on the
    workers. Both give the same winners: a match depends only on its systems'
    samples, which depend only on (seed, system, replication).
    ``head_sums`` (one per system of the concatenated groups), ``head_n``: an optional
    head start (see :func:`kn_start`); ``c``: KN's boundary parameter.
    """
    hs = (None if not head_n else np.asarray(head_sums, dtype=np.float64))
    workers = int(getattr(ctx.executor, "n_workers", 1))
    n_sys = sum(len(x) for x in groups)
    cost = ctx.cost_per_sample()
    probe = getattr(ctx.executor, "probe_cost", None)
    if cost != cost and workers > 1 and len(groups) > 1 and probe is not None:
        first = int(ctx.global_ids(np.asarray(groups[0][:1], dtype=np.int64))[0])
        cost = probe(first, int(ctx.stats.next_rep[groups[0][0]]))   # a few samples, timed here
    est = n_sys * 8 * n0 * (cost if cost == cost else 1e-3)
    resuming = st is not None and KNMatches.has_state(st, prefix)
    shipping = st is not None and (prefix + "shipped") in st        # resuming between waves
    threshold = float(getattr(ctx.executor, "group_ship_threshold_s", SHIP_THRESHOLD_S))
    if shipping or (workers > 1 and len(groups) > 1 and est > threshold and not resuming):
        return _ship_matches(ctx, groups, workers=workers, cost=cost, st=st, key=prefix + "shipped",
                             save=save, head_sums=hs, alpha=alpha, delta=delta, n0=n0, crn=crn,
                             lookahead=lookahead, head_n=int(head_n), c=int(c))
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
                         st=st, prefix=prefix, save=inner, head_sums=hs, head_n=head_n, c=c)
    ctx.merge_child(child, rows)
    for f in STATS_FIELDS:
        st.pop(key + f, None)
    return winners


WAVE_S = 3.0   # wall seconds of shipped matches between two boundaries (checkpoint, stop request)


def _ship_matches(ctx, groups: list[np.ndarray], *, workers: int, cost: float, st: dict | None,
                  key: str, save: Callable[[], None] | None, head_sums: np.ndarray | None = None,
                  **kn) -> np.ndarray:
    """Matches dealt whole to the workers, in waves of about ``WAVE_S`` seconds (sized from the
    estimated cost of a match, rescaled by the time the waves so far took). After each wave the
    winners so far are kept in ``st[key]`` and ``save`` is called, so a checkpoint or a SIGTERM
    waits for one wave, not for the whole round; a resumed run ships only the undecided matches.
    Without ``save`` and progress callback all matches go in one wave. Each match depends only
    on its systems' samples, so waves change no result."""
    sizes = np.array([len(x) for x in groups], dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    winners = (np.asarray(st[key], dtype=np.int64).copy() if st is not None and key in st
               else np.full(len(groups), -1, dtype=np.int64))
    guess = sizes * 8.0 * kn["n0"] * (cost if cost == cost else 1e-3)   # seconds per match
    scale = 1.0
    # waves only where someone looks between them (a checkpoint or a bar); else one wave, no barrier
    wave_s = WAVE_S if save is not None or ctx.wants_estimates else np.inf
    todo = np.flatnonzero(winners < 0)
    spent, shipped = 0, 0       # samples and systems of the matches decided here (for the bar)

    def report() -> None:
        if ctx.wants_estimates:    # the rest at the samples per system seen so far
            per = spent / shipped if shipped else float(kn["n0"])
            ctx.report_progress(contention=int(sizes[todo].sum()) + len(groups) - todo.size,
                                remaining=int(per * sizes[todo].sum()))
    report()
    while todo.size:
        filled = np.cumsum(guess[todo] * scale)
        wave = todo[:max(1, int(np.searchsorted(filled, wave_s * workers, side="right")))]
        n_chunks = min(len(wave), 4 * workers)
        chunks = [wave[j::n_chunks] for j in range(n_chunks)]
        members = [np.concatenate([groups[i] for i in ch]) for ch in chunks]
        t0, before = time.perf_counter(), ctx.total
        per_task = [{"sizes": sizes[ch].tolist()} for ch in chunks]
        if head_sums is not None:       # each chunk's head sums, in its members' order
            for task, ch in zip(per_task, chunks):
                task["head_sums"] = np.concatenate([head_sums[bounds[i]:bounds[i + 1]] for i in ch])
        outs = ctx.run_groups(kn_match_chunk, members, costs=[float(len(x)) for x in members],
                              per_task=per_task, **kn)
        took = time.perf_counter() - t0
        for ch, out in zip(chunks, outs):
            winners[ch] = out
        scale = max(took * workers, 1e-6) / max(float(guess[wave].sum()), 1e-9)
        todo = todo[wave.size:]
        spent, shipped = spent + ctx.total - before, shipped + int(sizes[wave].sum())
        report()
        if todo.size and st is not None and save is not None:
            st[key] = winners.copy()
            save()
    if st is not None:
        st.pop(key, None)
    return winners


def kn_match_chunk(ctx, *, sizes: list[int], alpha: float, delta: float, n0: int, crn: bool,
                   lookahead: int | None, head_n: int = 0, head_sums: np.ndarray | None = None,
                   c: int = 1) -> list[int]:
    """Several KN matches on one sub-context whose systems are the matches' systems in
    order (``sizes`` of each); each winner's position in its match. Module-level so
    that parallel backends can run it on other processes or ranks."""
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    groups = [np.arange(bounds[j], bounds[j + 1]) for j in range(len(sizes))]
    return kn_matches(ctx, groups, alpha=alpha, delta=delta, n0=n0, crn=crn, lookahead=lookahead,
                      head_sums=head_sums, head_n=head_n, c=c).tolist()


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


N_FILTER = 8   # coordinates of the float32 pair filter (plus the norm of the rest); 6 -> 8 prunes
#                enough more pairs to cut KN k = 10^4, n0 = 10 by about 30 % (n0 = 5: about 7 % slower)
CHUNK = 16     # the scan after the filter skips chunks of this many pairs with no survivor


@numba.njit(cache=True, fastmath=True)
def _filter_tail(x, s1, m1, n, q0, q1, q2, q3, q4, q5, q6, q7, q8, smax32, smin32, coef32, v):
    """v[k] = max(s1 - smin32[k], smax32[k] - m1) - coef32 * |q[k] - x|^2 for k < n (float32,
    vectorized: every array is a contiguous slice that starts at the row after the pair's first)."""
    for k in range(n):
        g1 = s1 - smin32[k]
        g2 = smax32[k] - m1
        e0 = q0[k] - x[0]
        e1 = q1[k] - x[1]
        e2 = q2[k] - x[2]
        e3 = q3[k] - x[3]
        e4 = q4[k] - x[4]
        e5 = q5[k] - x[5]
        e6 = q6[k] - x[6]
        e7 = q7[k] - x[7]
        e8 = q8[k] - x[8]
        v[k] = max(g1, g2) - coef32 * (e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3 + e4 * e4 + e5 * e5
                                       + e6 * e6 + e7 * e7 + e8 * e8)


@numba.njit(cache=True, fastmath=True)
def _chunk_max(v, n, cmax):
    """cmax[j] = max of v over chunk j (CHUNK values; the last chunk may be shorter); returns
    the number of chunks, so the scan after the filter can skip chunks without a survivor."""
    full = n // CHUNK
    for j in range(full):
        w = v[j * CHUNK:(j + 1) * CHUNK]
        m = w[0]
        for t in range(1, CHUNK):
            m = max(m, w[t])
        cmax[j] = m
    if full * CHUNK < n:
        w = v[full * CHUNK:n]
        m = w[0]
        for t in range(1, n - full * CHUNK):
            m = max(m, w[t])
        cmax[full] = m
        return full + 1
    return full


@numba.njit(cache=True)
def _filter_coordinates(j0, mg, c):
    """Float32 coordinates of the pair filter: the first N_FILTER centred first-stage values and
    the norm of the others, so |q_i - q_l|^2 <= |c_i - c_l|^2 (Cauchy-Schwarz on the rest)."""
    n0 = c.shape[1]
    nf = min(N_FILTER, n0)
    Q = np.zeros((N_FILTER + 1, mg), dtype=np.float32)
    qmax = 0.0
    for k in range(mg):
        rest = 0.0
        for u in range(n0):
            x = c[j0 + k, u]
            if u < nf:
                Q[u, k] = x
            else:
                rest += x * x
            qmax = max(qmax, abs(x))
        Q[N_FILTER, k] = np.sqrt(rest)
        qmax = max(qmax, np.sqrt(rest))
    return Q, qmax


@numba.njit(cache=True)
def _candidate_pairs(j0, mg, smax, smin, c, a, coef, off_end):
    """Every ordered pair (i eliminated by l) of rows j0..j0+mg that could eliminate within the
    block, max_t S_l - min_t S_i > max(0, coef |c_i - c_l|^2 - off_end), grouped by i:
    (ptr, l, threshold). Each unordered pair is visited once by a float32 lower-bound filter
    (conservative by a rounding slack), then checked exactly in float64."""
    n0 = c.shape[1]
    Q, qmax = _filter_coordinates(j0, mg, c)
    ref = smax.max()
    big = 0.0
    smax32 = np.empty(mg, dtype=np.float32)
    smin32 = np.empty(mg, dtype=np.float32)
    for k in range(mg):
        smax32[k] = smax[k] - ref
        smin32[k] = smin[k] - ref
        big = max(big, abs(smax[k] - ref), abs(smin[k] - ref))
    # every float32 term is below big + off_end + coef * 4 (N_FILTER + 1) qmax^2 in magnitude
    # and carries a few ulps (6e-8) of error: 1e-5 of that bound covers them all
    slack = np.float32(1e-5 * (2.0 * big + off_end + coef * 4.0 * (N_FILTER + 1) * qmax * qmax + 1.0))
    coef32 = np.float32(coef)
    off32 = np.float32(off_end)
    v = np.empty(mg, dtype=np.float32)
    cmax = np.empty(mg // CHUNK + 1, dtype=np.float32)
    x = np.empty(N_FILTER + 1, dtype=np.float32)
    # per row k1: at most 2 (mg - 1) pairs, gathered in a scratch buffer first
    bi = np.empty(2 * mg, dtype=np.int64)
    bl = np.empty(2 * mg, dtype=np.int64)
    bt = np.empty(2 * mg)
    cap = 4 * mg + 16
    pi = np.empty(cap, dtype=np.int64)
    pl = np.empty(cap, dtype=np.int64)
    pt = np.empty(cap)
    nc = 0
    for k1 in range(mg - 1):
        s = k1 + 1
        for u in range(N_FILTER + 1):
            x[u] = Q[u, k1]
        vs = v[s:]
        _filter_tail(x, smax32[k1] + off32, smin32[k1] - off32, mg - s, Q[0, s:], Q[1, s:], Q[2, s:],
                     Q[3, s:], Q[4, s:], Q[5, s:], Q[6, s:], Q[7, s:], Q[8, s:], smax32[s:], smin32[s:],
                     coef32, vs)
        nch = _chunk_max(vs, mg - s, cmax)
        nb = 0
        for j in range(nch):
            if cmax[j] <= -slack:
                continue
            for kk in range(j * CHUNK, min((j + 1) * CHUNK, mg - s)):
                if vs[kk] <= -slack:
                    continue
                k = kk + s
                dot = 0.0
                for u in range(n0):
                    dot += c[j0 + k1, u] * c[j0 + k, u]
                thr = coef * (a[j0 + k1] + a[j0 + k] - 2.0 * dot)
                lim = thr - off_end
                g1 = smax[k1] - smin[k]      # k eliminated by k1
                g2 = smax[k] - smin[k1]      # k1 eliminated by k
                if g1 > 0.0 and g1 > lim:
                    bi[nb] = k
                    bl[nb] = k1
                    bt[nb] = thr
                    nb += 1
                if g2 > 0.0 and g2 > lim:
                    bi[nb] = k1
                    bl[nb] = k
                    bt[nb] = thr
                    nb += 1
        if nb == 0:
            continue
        if nc + nb > cap:
            cap = max(2 * cap, nc + nb)
            pi = _grown(pi, nc, cap)
            pl = _grown(pl, nc, cap)
            pt = _grown(pt, nc, cap)
        pi[nc:nc + nb] = bi[:nb]
        pl[nc:nc + nb] = bl[:nb]
        pt[nc:nc + nb] = bt[:nb]
        nc += nb
    # group by the row that would be eliminated (counting sort)
    ptr = np.zeros(mg + 1, dtype=np.int64)
    for p in range(nc):
        ptr[pi[p] + 1] += 1
    for i in range(mg):
        ptr[i + 1] += ptr[i]
    fill = ptr[:-1].copy()
    cand_l = np.empty(nc, dtype=np.int64)
    cand_t = np.empty(nc)
    for p in range(nc):
        q = fill[pi[p]]
        cand_l[q] = pl[p]
        cand_t[q] = pt[p]
        fill[pi[p]] += 1
    return ptr, cand_l, cand_t


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
    cand_ptr, cand_l, cand_t = _candidate_pairs(j0, mg, smax, smin, c, a, coef, off_end)
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
