"""Run a registered base procedure on one group of systems (the partitioned pattern).

``ctx.run_groups(run_base, groups, base="kn", params={...})`` runs the base
procedure on a sub-context per group, anywhere the executor puts it; the
function is module-level and returns plain data. Used by P3C, divide and
conquer and any other partition-then-conquer design.

Replay (``replay > 0``): the group's first ``replay`` replications (0..replay-1)
were already drawn and counted by the caller (a CRN pilot). The base procedure
then sees them again as its first samples without their being counted twice:
a sample is a pure function of (seed, system, replication), so they are
recomputed (the group task receives no arrays; see the report for the core
change that would ship them instead). This is how P3C's unguaranteed
``pilot_mode="reuse"`` hands the pilot to the base as its first stage.

``greedy_allocation`` is the screening-free within-group allocation of P3C's
fixed-budget variant (explore-first greedy, Li, Fan & Hong 2025, with the
pilot as exploration): no pairwise elimination, no pairwise structure at all.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..sampling import SampleStats, SamplingContext

__all__ = ["run_base", "greedy_allocation", "ReplayContext"]


class ReplayContext(SamplingContext):
    """A sub-context whose replications [0, replay) were already counted by the parent.

    Its own statistics count every sample the base procedure used; ``replayed``
    counts those with replication < replay (the parent's pilot), so
    :meth:`merge_into` adds only the new ones to ``parent``.
    """

    def __init__(self, parent: SamplingContext, replay: int) -> None:
        super().__init__(parent.problem, parent.streams, systems=parent.systems,
                         next_rep=np.zeros(parent.k, dtype=np.int64), executor=parent.executor)
        self.replay = int(replay)
        self.replayed = SampleStats.zeros(self.k)

    def accept(self, systems, values, used, *, start=None) -> None:
        systems = np.asarray(systems, dtype=np.int64)
        first = (self.next_rep[systems] if start is None
                 else np.broadcast_to(np.asarray(start, dtype=np.int64), systems.shape)).copy()
        super().accept(systems, values, used, start=start)
        cnt = np.clip(self.replay - first, 0, np.asarray(used, dtype=np.int64))
        if cnt.any():
            mask = np.arange(values.shape[1])[None, :] < cnt[:, None]
            v = np.where(mask, values, 0.0)
            r = self.replayed
            np.add.at(r.n, systems, cnt)
            np.add.at(r.sums, systems, v.sum(axis=1))
            np.add.at(r.sumsq, systems, (v * v).sum(axis=1))
            r.total += int(cnt.sum())

    def draw_counts(self, systems, counts):
        systems = np.asarray(systems, dtype=np.int64)
        first = self.next_rep[systems].copy()
        out = super().draw_counts(systems, counts)
        for j, vals in enumerate(out):
            c = int(np.clip(self.replay - first[j], 0, vals.shape[0]))
            if c:
                r = self.replayed
                r.n[systems[j]] += c
                r.sums[systems[j]] += float(vals[:c].sum())
                r.sumsq[systems[j]] += float((vals[:c] ** 2).sum())
                r.total += c
        return out

    @property
    def new_samples(self) -> int:
        """Samples used beyond the replayed pilot."""
        return int(self.total - self.replayed.total)

    def merge_into(self, parent: SamplingContext) -> None:
        new = self.stats.minus(self.replayed)
        new.simulated = self.stats.simulated
        parent.stats.merge(new)


def _base_object(base: str, params: dict):
    from . import make
    return make(base, **params)


def run_base(ctx: SamplingContext, *, base: str, params: dict, replay: int = 0,
             budget: int | None = None) -> dict[str, Any]:
    """Run base procedure ``base`` (registry name; "greedy" = :func:`greedy_allocation`)
    with ``params`` on the group ``ctx``; returns {"best": local index, "samples": new samples}.

    A group of one system returns it without sampling.
    """
    if ctx.k == 1:
        return {"best": 0, "samples": 0}
    work = ReplayContext(ctx, replay) if replay > 0 else ctx
    before = ctx.total
    if base == "greedy":
        best = greedy_allocation(work, **params)
    else:
        proc = _base_object(base, params)
        best = int(proc.run(work).best)
    if replay > 0:
        work.merge_into(ctx)
    return {"best": int(best), "samples": int(ctx.total - before)}


def greedy_allocation(ctx: SamplingContext, *, budget: int, n0: int, batch: int | None = None) -> int:
    """Explore-first greedy: n0 samples each, then the rest of ``budget`` (new samples)
    goes, ``batch`` at a time, to the system with the largest running mean.

    With replay the n0 exploration samples are the caller's pilot and cost nothing
    here. Returns the local index with the largest mean. No pairwise structure:
    O(k) memory, O(k + budget/batch * log k) work.
    """
    k = ctx.k
    # exploration: replications 0..n0-1 of every system (replayed when they are a pilot)
    ctx.draw(np.arange(k), int(n0))
    left = int(budget) - (ctx.new_samples if isinstance(ctx, ReplayContext) else ctx.total)
    if left > 0:
        b = max(1, left // max(1, 4 * k)) if batch is None else int(batch)
        sums = ctx.sums.copy()
        n = ctx.n.astype(np.float64)
        while left > 0:
            lead = int(np.argmax(sums / n))
            step = min(b, left)
            v = ctx.draw(np.array([lead]), step)
            sums[lead] += float(v.sum())
            n[lead] += step
            left -= step
    return int(np.argmax(ctx.means()))
