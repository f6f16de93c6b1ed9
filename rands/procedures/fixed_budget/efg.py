"""EFG and EFG+: explore-first greedy (Li, Fan & Hong, Management Science 2025, arXiv 2303.02951).

EFG: n0 samples of every system (exploration), then the greedy phase: repeatedly sample the
system with the largest running mean until the budget is spent; select the largest mean.
With ``batch`` = b > 1 each greedy decision gives the leader b consecutive samples.

EFG+ (our reading; the paper's exact split is not in our reference): a second exploration
phase after the greedy one. The budget left after the first exploration, N' = N - n0 k, is
split: (1 - q) N' for the greedy phase, the rest for re-exploration, spread equally over the
m systems with the largest current means (default m = ceil(sqrt(k)), at least 2); the largest
cumulative mean is selected. The re-exploration guards the final choice among the systems
at the greedy "water level", which the greedy phase has separated least.

Guarantee (paper): none at a finite budget. The greedy procedure is sample optimal: PCS
stays bounded away from 0 with N = O(k) when the best mean stays a constant gap above the
rest (bound tight in the slippage configuration with common variance); otherwise stated via
PGS. EFG is consistent when n0 grows with the budget. CRN is allowed (it neither helps nor
hurts the greedy rule).

Implementation of the greedy phase: an exact one-sample-at-a-time greedy over a max-heap
(ties: lowest index) in a numba kernel, fed by *look-ahead* draws. When the leader has no
buffered sample the context simulates, in one block, the leader's next replications (a chunk
that grows with the leader's current stint) and, in bulk, the next replication(s) of the
systems just below it in the heap (``ctx.draw_ahead``: simulated, not counted). A sample is
counted (budget, sample sizes, means: ``ctx.accept_sequence``) only when the greedy consumes
it. Because sample (i, r) depends only on (seed, i, r), consuming buffered samples in
replication order reproduces the one-at-a-time greedy path exactly (tested against a
textbook loop): the budget is spent in full and the selection is exact EFG whatever the
look-ahead. Samples simulated but never consumed ("look-ahead leftover",
``extras['lookahead_leftover']``) cost simulation time only (``samples_simulated``).
``lookahead=1`` (with batch 1) simulates one sample per call (no leftover; slow for large
budgets). Cost: one context round trip per refill; a large look-ahead (default: a quarter of
the greedy budget, at most 2^20 samples) keeps the refills few.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ...errors import ParameterError, check_float, check_int
from ...params import CRN, PROBABILITY_OPEN, ints, optional
from ..base import Procedure, ProcedureOutput, check_budget
from ._common import argmax_first, draw_chunked, restored_state



# ---------------------------------------------------------------------------- heap kernels
@numba.njit(inline="always", cache=True)
def _better(means, a, b):
    return means[a] > means[b] or (means[a] == means[b] and a < b)


@numba.njit(cache=True)
def _sift_down(heap, means, pos, n):
    item = heap[pos]
    while True:
        c = 2 * pos + 1
        if c >= n:
            break
        if c + 1 < n and _better(means, heap[c + 1], heap[c]):
            c += 1
        if _better(means, heap[c], item):
            heap[pos] = heap[c]
            pos = c
        else:
            break
    heap[pos] = item


@numba.njit(cache=True)
def _heapify(means):
    n = means.shape[0]
    heap = np.arange(n, dtype=np.int64)
    for pos in range(n // 2 - 1, -1, -1):
        _sift_down(heap, means, pos, n)
    return heap


@numba.njit(cache=True)
def _consume(heap, means, cn, cs, bstart, blen, arena, batch, target, consumed, run, log_s, log_v,
             nlog):
    """Run the greedy from ``consumed`` toward ``target`` samples on buffered values.

    ``run`` = [system, length] of the current leader's stint (updated). Every consumed sample
    is appended to the log (``log_s``, ``log_v``), which the caller counts in the context.
    Returns (consumed, leader needing a refill, -1 at the target or -2 when the log is full,
    buffered samples consumed, log length).
    """
    used = 0
    while consumed < target:
        i = heap[0]
        need = min(batch, target - consumed)
        if blen[i] < need:
            return consumed, i, used, nlog
        if nlog + need > log_s.shape[0]:
            return consumed, -2, used, nlog
        s = bstart[i]
        acc = 0.0
        for j in range(need):
            v = arena[s + j]
            acc += v
            log_s[nlog] = i
            log_v[nlog] = v
            nlog += 1
        bstart[i] = s + need
        blen[i] -= need
        cn[i] += need
        cs[i] += acc
        means[i] = cs[i] / cn[i]
        consumed += need
        used += need
        if run[0] == i:
            run[1] += need
        else:
            run[0] = i
            run[1] = need
        _sift_down(heap, means, 0, heap.shape[0])
    return consumed, -1, used, nlog


@numba.njit(cache=True)
def _top_unbuffered(heap, means, blen, m, exclude, out):
    """Up to m systems without buffered samples, best current means first (skips ``exclude``).

    Best-first traversal of the heap with an auxiliary max-heap of heap positions.
    """
    n = heap.shape[0]
    cap = out.shape[0] * 2 + 64
    aux = np.empty(cap, dtype=np.int64)
    na = 1
    aux[0] = 0
    got = 0
    while na > 0 and got < m:
        p = aux[0]
        na -= 1
        if na > 0:  # pop: move last to root and sift down in aux
            last = aux[na]
            q = 0
            while True:
                c = 2 * q + 1
                if c >= na:
                    break
                if c + 1 < na and _better(means, heap[aux[c + 1]], heap[aux[c]]):
                    c += 1
                if _better(means, heap[aux[c]], heap[last]):
                    aux[q] = aux[c]
                    q = c
                else:
                    break
            aux[q] = last
        s = heap[p]
        if blen[s] == 0 and s != exclude:
            out[got] = s
            got += 1
        for c in (2 * p + 1, 2 * p + 2):
            if c < n:
                if na == aux.shape[0]:
                    grown = np.empty(2 * aux.shape[0], dtype=np.int64)
                    grown[:na] = aux[:na]
                    aux = grown
                q = na  # push and sift up
                na += 1
                while q > 0:
                    par = (q - 1) // 2
                    if _better(means, heap[c], heap[aux[par]]):
                        aux[q] = aux[par]
                        q = par
                    else:
                        break
                aux[q] = c
    return got


@numba.njit(cache=True)
def _store(systems, values, bstart, blen, lpos, arena, live, nlive, top):
    """Append values[j, :] to the buffer of systems[j] (keeping any remainder in front).

    Each system has at most one segment; ``live[lpos[s]] == s`` marks its current entry in
    the allocation-ordered list of segments. Compacts the arena when full.
    Returns (nlive, top); the caller guarantees the capacity.
    """
    m, b = values.shape
    total_new = 0
    for j in range(m):
        total_new += blen[systems[j]] + b
    if top + total_new > arena.shape[0]:
        # compact: current entries are in increasing address order, so copying down is safe
        w = 0
        keep = 0
        for q in range(nlive):
            s = live[q]
            if lpos[s] != q:
                continue
            ln = blen[s]
            if ln > 0:
                src = bstart[s]
                for t in range(ln):
                    arena[w + t] = arena[src + t]
                bstart[s] = w
                w += ln
                live[keep] = s
                lpos[s] = keep
                keep += 1
            else:
                lpos[s] = -1
        nlive = keep
        top = w
    for j in range(m):
        s = systems[j]
        ln = blen[s]
        src = bstart[s]
        for t in range(ln):
            arena[top + t] = arena[src + t]
        for t in range(b):
            arena[top + ln + t] = values[j, t]
        live[nlive] = s
        lpos[s] = nlive
        nlive += 1
        bstart[s] = top
        blen[s] = ln + b
        top += ln + b
    return nlive, top


# ---------------------------------------------------------------------------- greedy phase
LOG_CAPACITY = 1 << 16     # consumed samples counted in the context at least this often
LEAD_MIN = 8               # a leader that needs a refill gets at least this many decisions' worth
TOP_UP = 8                 # and the systems just below it this many each (k=10^5 slippage: 5x fewer refills than 1)


def _new_greedy_state(ctx, lookahead: int, batch: int) -> dict:
    k = ctx.k
    n = ctx.n.copy()
    s = ctx.sums.copy()
    means = s / n
    cap = 2 * (lookahead + batch) + 64
    return {"heap": _heapify(means), "cn": n, "cs": s, "means": means,
            "bstart": np.zeros(k, dtype=np.int64), "blen": np.zeros(k, dtype=np.int64),
            "run": np.array([-1, 0], dtype=np.int64), "lpos": np.full(k, -1, dtype=np.int64),
            "arena": np.empty(cap),
            "live": np.empty(cap, dtype=np.int64), "nlive": 0, "top": 0, "consumed": 0,
            "buffered": 0, "trips": 0, "dnext": ctx.next_rep.copy(),
            "log_s": np.empty(max(LOG_CAPACITY, batch), dtype=np.int64),
            "log_v": np.empty(max(LOG_CAPACITY, batch)), "nlog": 0}


def _flush(ctx, g: dict) -> None:
    """Count the consumed samples in the context (in consumption order: per system, in
    replication order, the arithmetic of one-at-a-time draws)."""
    if g["nlog"]:
        ctx.accept_sequence(g["log_s"][:g["nlog"]], g["log_v"][:g["nlog"]])
        g["nlog"] = 0


def _draw_ahead(ctx, g: dict, systems: np.ndarray, b: int) -> None:
    """Simulate (not count) the next b replications of ``systems`` after what is buffered."""
    dnext = g["dnext"]
    vals = ctx.draw_ahead(systems, b, start=dnext[systems])
    dnext[systems] += b
    _store_values(g, systems, vals)


def greedy_phase(ctx, g: dict, *, target: int, draw_limit: int, batch: int, lookahead: int,
                 stage: int, on_boundary=None) -> dict:
    """Greedy sampling until ``target`` greedy samples are consumed (or the context total
    reaches ``draw_limit``). ``g`` is the greedy state (see :func:`_new_greedy_state`); it is
    updated in place and passed to ``ctx.boundary`` after every refill.

    Look-ahead: samples are simulated ahead (``ctx.draw_ahead``) and counted in the context
    only when the greedy consumes them (``ctx.accept_sequence``), so the budget, the sample
    sizes and the selection are those of the exact one-sample-at-a-time greedy; samples
    simulated but never consumed are the look-ahead's cost (``samples_simulated``)."""
    heap, means, cn, cs = g["heap"], g["means"], g["cn"], g["cs"]
    bstart, blen = g["bstart"], g["blen"]
    b0 = TOP_UP * batch   # decisions' worth for each system just below the leader
    cand = np.empty(max(1, lookahead // b0 + 1), dtype=np.int64)
    half = lookahead // 2                 # prefetch budget of the non-leaders
    lead_cap = max(1, lookahead - half)   # largest leader chunk
    while True:
        consumed, lead, used, nlog = _consume(heap, means, cn, cs, bstart, blen, g["arena"], batch,
                                              target, g["consumed"], g["run"], g["log_s"],
                                              g["log_v"], g["nlog"])
        g["consumed"], g["nlog"] = int(consumed), int(nlog)
        g["buffered"] -= int(used)
        if lead == -2:
            _flush(ctx, g)
            continue
        remaining = min(draw_limit - ctx.total - g["nlog"], target - g["consumed"])
        if lead < 0 or remaining <= 0:
            break
        # the leader's chunk grows with its current stint (at most half the look-ahead); the
        # systems just below it get TOP_UP decisions' worth each while the non-leaders hold
        # less than 0.9 of the other half (hysteresis: the heap walk costs O(buffered systems
        # near the top)).
        need = min(batch - int(blen[lead]), remaining)
        run = g["run"]
        stint = int(run[1]) if int(run[0]) == lead else 0
        b_lead = max(need, min(max(stint // 2, LEAD_MIN * batch), lead_cap, remaining))
        _draw_ahead(ctx, g, np.array([lead], dtype=np.int64), b_lead)
        others_buffered = g["buffered"] - int(blen[lead])
        if half > 0 and others_buffered <= 0.9 * half:
            m_o = min((half - others_buffered) // b0, cand.shape[0], remaining)
            got = _top_unbuffered(heap, means, blen, m_o, lead, cand) if m_o > 0 else 0
            if got > 0:
                _draw_ahead(ctx, g, cand[:got].copy(), b0)
        g["trips"] += 1
        if on_boundary is not None and ctx.checkpointer is not None:
            _flush(ctx, g)
            on_boundary()
    _flush(ctx, g)
    return g


def _store_values(g: dict, systems: np.ndarray, vals: np.ndarray) -> None:
    """Buffer ``vals`` (len(systems) x b) for ``systems``, growing the arena if needed."""
    new = int(g["blen"][systems].sum()) + vals.size
    if g["buffered"] + new > g["arena"].shape[0] or g["nlive"] + systems.shape[0] > g["live"].shape[0]:
        cap = 2 * (g["buffered"] + new) + 64
        arena = np.empty(max(cap, g["top"]))
        arena[:g["top"]] = g["arena"][:g["top"]]
        live = np.empty(arena.shape[0] + systems.shape[0], dtype=np.int64)
        live[:g["nlive"]] = g["live"][:g["nlive"]]
        g["arena"], g["live"] = arena, live
    g["nlive"], g["top"] = _store(systems, np.ascontiguousarray(vals), g["bstart"], g["blen"],
                                  g["lpos"], g["arena"], g["live"], g["nlive"], g["top"])
    g["buffered"] += vals.size


def _greedy_boundary(ctx, stage: int, g: dict, extra: dict):
    def fire():
        state = {"stage": stage, **extra}
        state.update({f"g_{key}": val for key, val in g.items()})
        ctx.boundary(state)
    return fire


def _load_greedy_state(st: dict) -> dict:
    g = {}
    for key, val in st.items():
        if key.startswith("g_"):
            name = key[2:]
            if isinstance(val, np.ndarray) and val.ndim > 0:
                g[name] = np.ascontiguousarray(val).copy()
            else:
                g[name] = int(val)
    return g


def _default_lookahead(greedy_budget: int, batch: int) -> int:
    """Buffered samples at most: a quarter of the greedy budget, at most 2^20 (16 MiB)."""
    return max(batch, min(greedy_budget // 4, 1 << 20))


class EFG(Procedure):
    """Explore-first greedy (Li, Fan & Hong 2025).

    Parameters
    ----------
    budget : total samples N (>= n0 * k).
    n0 : exploration samples per system (>= 1).
    batch : samples the leader gets per greedy decision (1 = the paper's greedy).
    lookahead : largest number of simulated but not yet consumed samples (look-ahead buffer);
        None = min(greedy budget / 4, 2^20). It changes the samples simulated, never the
        selection or the samples used. 1 with batch 1 = exactly one simulation per sample.
    crn : common random numbers.
    """

    name = "efg"
    kind = "fixed_budget"
    guarantee = ("none at finite budget; sample optimal (PCS bounded away from 0 with N = O(k) "
                 "when the best is a constant gap above the rest); consistent if n0 grows with N")
    assumptions = "any output distribution with finite variance; CRN allowed"
    supports_crn = True
    reference = ("Li, Fan & Hong (2025), The (surprising) sample optimality of greedy procedures "
                 "for large-scale ranking and selection, Management Science, arXiv 2303.02951")
    _parameter_constraints = {"budget": ints(2), "n0": ints(1), "batch": ints(1),
                              "lookahead": optional(ints(1)), "crn": CRN}

    def __init__(self, budget: int = 1000, n0: int = 10, batch: int = 1,
                 lookahead: int | None = None, crn: bool = False):
        self.budget = budget
        self.n0 = n0
        self.batch = batch
        self.lookahead = lookahead
        self.crn = crn
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_int("budget", self.budget, low=2)
        check_int("n0", self.n0, low=1)
        check_int("batch", self.batch, low=1)
        if self.lookahead is not None:
            check_int("lookahead", self.lookahead, low=1)
        super()._validate_params()

    def check_problem(self, problem) -> None:
        super().check_problem(problem)
        check_budget(self.budget, int(self.n0), problem.k)
        greedy = int(self.budget) - int(self.n0) * problem.k
        for nm in ("batch", "lookahead"):     # one block of this many samples is drawn at once
            v = getattr(self, nm)
            if v is not None and v > max(greedy, 1):
                raise ParameterError(f"procedure {self.name!r}: {nm}={v:,} exceeds the greedy budget "
                                     f"budget - n0*k = {greedy:,}; give {nm} <= {max(greedy, 1):,}")

    def budget_limit(self, problem) -> int:
        return int(self.budget)

    def _lookahead(self, greedy_budget: int) -> int:
        if self.lookahead is None:
            return _default_lookahead(greedy_budget, int(self.batch))
        return max(int(self.lookahead), int(self.batch))

    def _greedy_budget(self, k: int) -> int:
        return int(self.budget) - int(self.n0) * k

    def run(self, ctx) -> ProcedureOutput:
        k = ctx.k
        N = int(self.budget)
        G = self._greedy_budget(k)
        look = self._lookahead(G)
        st = restored_state(ctx)
        if int(st.get("stage", 0)) == 0:
            draw_chunked(ctx, np.arange(k, dtype=np.int64), int(self.n0))
            ctx.log("exploration", n0=int(self.n0))
            g = _new_greedy_state(ctx, look, int(self.batch))
            _greedy_boundary(ctx, 1, g, {})()
        else:
            g = _load_greedy_state(st)
        greedy_phase(ctx, g, target=G, draw_limit=N, batch=int(self.batch), lookahead=look,
                     stage=1, on_boundary=_greedy_boundary(ctx, 1, g, {}))
        leftover = int(g["buffered"])
        ctx.log("greedy", greedy_samples=g["consumed"], lookahead_leftover=leftover,
                refills=g["trips"])
        best = int(g["heap"][0])   # largest greedy (consumed) mean
        return ProcedureOutput(best=best, extras={"greedy_samples": g["consumed"],
                                                  "lookahead_leftover": leftover,
                                                  "refills": g["trips"]})


class EFGPlus(EFG):
    """EFG+ : explore, greedy, then re-explore the top systems (our reading of Li, Fan & Hong).

    Extra parameters
    ----------------
    explore_share : q, the share of N - n0 k kept for the second exploration (0 < q < 1).
    top : m, how many systems (largest current means) share it; None = max(2, ceil(sqrt(k))).
    """

    name = "efg+"
    _parameter_constraints = {**EFG._parameter_constraints, "explore_share": PROBABILITY_OPEN,
                              "top": optional(ints(1))}

    def __init__(self, budget: int = 1000, n0: int = 10, explore_share: float = 0.2,
                 top: int | None = None, batch: int = 1, lookahead: int | None = None,
                 crn: bool = False):
        self.explore_share = explore_share
        self.top = top
        super().__init__(budget=budget, n0=n0, batch=batch, lookahead=lookahead, crn=crn)

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_float("explore_share", self.explore_share, low=0.0, high=1.0, low_open=True,
                    high_open=True)
        if self.top is not None:
            check_int("top", self.top, low=1)
        super()._validate_params()

    def _greedy_budget(self, k: int) -> int:
        rest = int(self.budget) - int(self.n0) * k
        return int(math.floor((1.0 - float(self.explore_share)) * rest))

    def _top(self, k: int) -> int:
        if self.top is not None:
            return min(int(self.top), k)
        return min(k, max(2, math.ceil(math.sqrt(k))))

    def run(self, ctx) -> ProcedureOutput:
        k = ctx.k
        N = int(self.budget)
        G = self._greedy_budget(k)
        look = self._lookahead(G)
        st = restored_state(ctx)
        stage = int(st.get("stage", 0))
        if stage == 0:
            draw_chunked(ctx, np.arange(k, dtype=np.int64), int(self.n0))
            ctx.log("exploration", n0=int(self.n0))
            g = _new_greedy_state(ctx, look, int(self.batch))
            _greedy_boundary(ctx, 1, g, {})()
            stage = 1
        elif stage == 1:
            g = _load_greedy_state(st)
        if stage == 1:
            greedy_phase(ctx, g, target=G, draw_limit=int(self.n0) * k + G, batch=int(self.batch),
                         lookahead=look, stage=1, on_boundary=_greedy_boundary(ctx, 1, g, {}))
            leftover = int(g["buffered"])
            ctx.log("greedy", greedy_samples=g["consumed"], lookahead_leftover=leftover,
                    refills=g["trips"])
            ctx.boundary({"stage": 2, "greedy_samples": g["consumed"], "leftover": leftover,
                          "refills": g["trips"]})
            info = {"greedy_samples": g["consumed"], "lookahead_leftover": leftover,
                    "refills": g["trips"]}
        else:
            info = {"greedy_samples": int(st["greedy_samples"]),
                    "lookahead_leftover": int(st["leftover"]), "refills": int(st["refills"])}
        m = self._top(k)
        means = ctx.means()
        order = np.lexsort((np.arange(k), -means))[:m]
        per = (N - ctx.total) // m
        if per > 0:
            draw_chunked(ctx, np.sort(order), int(per))
        ctx.log("re-exploration", top=m, per_system=int(per))
        best = argmax_first(ctx.means())
        info["top"] = m
        return ProcedureOutput(best=best, extras=info)


__all__ = ["EFG", "EFGPlus", "greedy_phase"]
