"""The sampling context: what a procedure sees while it runs.

A procedure asks the context for blocks of samples and reads back values and
sufficient statistics; the context owns the statistics (one
:class:`SampleStats`), the replication index of every system, the budget, the
trace, progress, checkpoints and the executor that decides where blocks run.
It is the only door: procedures never write counts, sums or replication
indices, never touch ranks, processes or files.

Replication indices: system i's samples are its replications 0, 1, 2, ... in
order, so its t-th sample is the same number however the run is partitioned.
``draw(systems, n, start=r0)`` asks for replications r0..r0+n-1 of each system
instead (CRN pairing of systems whose counts differ, as in KT's later rounds;
``start`` may be one value per system); a system's next replication is then
max(next, r0 + n).

Look-ahead: :meth:`SamplingContext.draw_ahead` simulates n stages for each
system without counting them, and :meth:`SamplingContext.accept` then counts
the first ``used[j]`` of row j. The statistics, the budget and the result see
the samples *used*; ``stats.simulated`` counts what was simulated (the cost).

Asynchronous procedures (PASS) use :meth:`SamplingContext.submit` and
:meth:`SamplingContext.collect`: the context reserves the replications, checks
the budget, counts what comes back and reports progress.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numba
import numpy as np

from . import timelimit
from .errors import BudgetExceededError, Interrupted, SimulationError
from .streams import Streams


# ---------------------------------------------------------------------------- statistics
@dataclass
class SampleStats:
    """Counts, sums, sums of squares and next replication of k systems; totals.

    ``total`` counts samples used by the procedure (what its guarantee and the
    budget count); ``simulated`` counts samples simulated (>= total with look-ahead).
    """

    n: np.ndarray
    sums: np.ndarray
    sumsq: np.ndarray
    next_rep: np.ndarray
    total: int = 0
    simulated: int = 0

    ARRAYS = ("n", "sums", "sumsq", "next_rep")

    @classmethod
    def zeros(cls, k: int, next_rep: np.ndarray | None = None) -> "SampleStats":
        nxt = np.zeros(k, dtype=np.int64) if next_rep is None else np.array(next_rep, dtype=np.int64)
        return cls(np.zeros(k, dtype=np.int64), np.zeros(k), np.zeros(k), nxt)

    def merge(self, other: "SampleStats", index: np.ndarray | None = None) -> None:
        """Add ``other`` (statistics of the systems ``index``, or of all) into these."""
        sel = slice(None) if index is None else np.asarray(index, dtype=np.int64)
        self.n[sel] += other.n
        self.sums[sel] += other.sums
        self.sumsq[sel] += other.sumsq
        self.next_rep[sel] = np.maximum(self.next_rep[sel], other.next_rep)
        self.total += int(other.total)
        self.simulated += int(other.simulated)

    def minus(self, other: "SampleStats") -> "SampleStats":
        """These statistics less ``other`` (same systems); next_rep kept."""
        return SampleStats(self.n - other.n, self.sums - other.sums, self.sumsq - other.sumsq,
                           self.next_rep.copy(), self.total - other.total,
                           self.simulated - other.simulated)

    def copy(self) -> "SampleStats":
        return SampleStats(self.n.copy(), self.sums.copy(), self.sumsq.copy(), self.next_rep.copy(),
                           self.total, self.simulated)

    def to_dict(self) -> dict:
        return {"n": self.n, "sums": self.sums, "sumsq": self.sumsq, "next_rep": self.next_rep,
                "total": int(self.total), "simulated": int(self.simulated)}

    @classmethod
    def from_dict(cls, d: dict) -> "SampleStats":
        return cls(np.asarray(d["n"], dtype=np.int64), np.asarray(d["sums"], dtype=np.float64),
                   np.asarray(d["sumsq"], dtype=np.float64), np.asarray(d["next_rep"], dtype=np.int64),
                   int(d["total"]), int(d.get("simulated", d["total"])))


# ---------------------------------------------------------------------------- serial executor
class SerialExecutor:
    """Runs every block in this process. The reference for all backends."""

    n_workers = 1
    name = "serial"

    def __init__(self) -> None:
        self.problem = None
        self.streams = None
        self.sim_time = 0.0
        self.group_sim_time = 0.0
        self.simulated = 0

    def bind(self, problem, streams: Streams) -> None:
        self.problem, self.streams = problem, streams

    def simulate(self, systems: np.ndarray, reps: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = timelimit.simulate(self.problem, systems, reps, self.streams)   # sim_timeout
        self.sim_time += time.perf_counter() - t0
        self.simulated += int(np.shape(systems)[0])
        return out

    def cost_per_sample(self) -> float:
        """Measured seconds per sample (nan before the first block)."""
        return self.sim_time / self.simulated if self.simulated else float("nan")

    def map_groups(self, fn: Callable, tasks: list[dict]) -> list[tuple[Any, dict]]:
        out = []
        for task in tasks:
            res, stats, sim = run_group_task(self.problem, self.streams, fn, task, timed=True)
            self.group_sim_time += sim
            out.append((res, stats))
        return out

    def reset_accounting(self) -> None:
        self.sim_time = self.group_sim_time = 0.0
        self.simulated = 0

    def accounting(self, wall: float) -> dict:
        busy = self.sim_time + self.group_sim_time
        return {"backend": self.name, "workers": 1, "sim_time": [busy],
                "utilization": [min(1.0, busy / wall) if wall > 0 else 0.0]}

    def close(self) -> None:
        pass


def run_group_task(problem, streams: Streams, fn: Callable, task: dict, *, timed: bool = False):
    """Run ``fn(context, **task['kwargs'])`` on a sub-context over ``task['systems']``.

    Returns fn's result (plain data) and the sub-context's statistics (a dict),
    and with ``timed`` the seconds the sub-context spent simulating. Every
    executor calls this, in whatever process holds the group.
    """
    sub = SamplingContext(problem, streams, systems=task["systems"], next_rep=task["next_rep"])
    result = fn(sub, **task.get("kwargs", {}))
    if timed:
        return result, sub.stats.to_dict(), sub.executor.sim_time
    return result, sub.stats.to_dict()


# ---------------------------------------------------------------------------- the context
class SamplingContext:
    """Statistics, replication indices and budget of one selection run.

    Parameters
    ----------
    problem, streams : what to sample and its random inputs.
    budget : maximum total samples used, or None. Exceeding it raises BudgetExceededError.
    executor : where blocks run (default: this process).
    systems : global ids of the systems this context covers (a group); default all.
    next_rep : starting replication index of each covered system.
    checkpointer, progress : see :mod:`rands.checkpoint`; progress is called as
        ``progress(total, simulated=..., contention=..., estimate=...)`` (keywords
        only when it accepts them).
    """

    def __init__(self, problem, streams: Streams, *, budget: int | None = None, executor=None,
                 systems: np.ndarray | None = None, next_rep: np.ndarray | None = None,
                 checkpointer=None, progress=None) -> None:
        self.problem = problem
        self.streams = streams
        self.budget = None if budget is None else int(budget)
        self.executor = executor if executor is not None else SerialExecutor()
        if getattr(self.executor, "problem", None) is not problem or self.executor.streams is not streams:
            self.executor.bind(problem, streams)
        if systems is None:
            self.systems = None
            self.k = int(problem.k)
        else:
            self.systems = np.asarray(systems, dtype=np.int64)
            self.k = int(self.systems.shape[0])
        self.stats = SampleStats.zeros(self.k, next_rep)
        self.trace: list[dict] = []
        self.checkpointer = checkpointer
        self.progress = progress
        #: a progress bar (not only the result's contention record) reads estimates of what is left
        self.wants_estimates = getattr(progress, "inner", progress) is not None
        self._progress_kw = _accepts_keywords(progress)
        self._pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.restored: dict | None = None
        if checkpointer is not None:
            self.restored = checkpointer.restore(self)

    # ------------------------------------------------------------------ statistics views
    @property
    def n(self) -> np.ndarray:
        return self.stats.n

    @property
    def sums(self) -> np.ndarray:
        return self.stats.sums

    @property
    def sumsq(self) -> np.ndarray:
        return self.stats.sumsq

    @property
    def next_rep(self) -> np.ndarray:
        return self.stats.next_rep

    @property
    def total(self) -> int:
        return self.stats.total

    @property
    def simulated(self) -> int:
        return self.stats.simulated

    def restore_stats(self, stats: SampleStats) -> None:
        """Replace the statistics (a checkpoint being resumed)."""
        if stats.n.shape != (self.k,):
            raise ValueError(f"statistics of {stats.n.shape[0]} systems for a context of {self.k}")
        self.stats = stats

    def remaining_budget(self) -> int | None:
        return None if self.budget is None else self.budget - self.stats.total

    def cost_per_sample(self) -> float:
        """The executor's measured seconds per sample (nan while unknown)."""
        f = getattr(self.executor, "cost_per_sample", None)
        return float(f()) if f is not None else float("nan")

    # ------------------------------------------------------------------ sampling
    def global_ids(self, local: np.ndarray) -> np.ndarray:
        local = np.asarray(local, dtype=np.int64)
        return local if self.systems is None else self.systems[local]

    def _block_reps(self, systems: np.ndarray, n: int, start) -> np.ndarray:
        if start is None:
            return self.stats.next_rep[systems][:, None] + np.arange(n)[None, :]
        start = np.asarray(start, dtype=np.int64)
        if start.ndim == 0:
            return np.broadcast_to(int(start) + np.arange(n)[None, :], (systems.shape[0], n))
        if start.shape != systems.shape:
            raise ValueError("start needs one replication per system")
        return start[:, None] + np.arange(n)[None, :]

    def draw(self, systems, n: int, *, start=None) -> np.ndarray:
        """Draw n more samples of each of ``systems`` (local ids); returns (len, n).

        Replications are each system's next n, or start..start+n-1 (``start`` an
        int for all or one per system).
        """
        systems = np.asarray(systems, dtype=np.int64)
        need = systems.shape[0] * max(int(n), 0)
        if self.budget is not None and need and self.stats.total + need > self.budget:
            raise BudgetExceededError(
                f"procedure asked for {need} samples with {self.budget - self.stats.total} of budget "
                f"{self.budget} left")
        values = self.draw_ahead(systems, n, start=start)
        if values.size:
            used = np.full(systems.shape[0], values.shape[1], dtype=np.int64)
            self.accept(systems, values, used, start=start)
        return values

    def draw_ahead(self, systems, n: int, *, start=None) -> np.ndarray:
        """Simulate n samples of each system without counting them (see :meth:`accept`).

        Refused (BudgetExceededError) when even one sample per system would exceed the budget.
        """
        systems = np.asarray(systems, dtype=np.int64)
        n = int(n)
        m = systems.shape[0]
        if n <= 0 or m == 0:
            return np.empty((m, max(n, 0)))
        if self.budget is not None and self.stats.total + m > self.budget:
            raise BudgetExceededError(
                f"procedure asked for {m * n} samples with {self.budget - self.stats.total} of budget "
                f"{self.budget} left")
        reps = self._block_reps(systems, n, start)
        values = self._simulate(np.repeat(systems, n), reps.ravel()).reshape(m, n)
        self.stats.simulated += m * n
        return values

    def accept(self, systems, values: np.ndarray, used: np.ndarray, *, start=None) -> None:
        """Count the first ``used[j]`` samples of row j of a :meth:`draw_ahead` block."""
        systems = np.asarray(systems, dtype=np.int64)
        used = np.ascontiguousarray(used, dtype=np.int64)
        if used.shape != systems.shape or (used < 0).any() or (used > values.shape[1]).any():
            raise ValueError("accept needs 0 <= used <= block width, one per system")
        k_used = int(used.sum())
        if self.budget is not None and self.stats.total + k_used > self.budget:
            raise BudgetExceededError(
                f"procedure used {k_used} samples with {self.budget - self.stats.total} of budget "
                f"{self.budget} left")
        if start is None:
            new_next = self.stats.next_rep[systems] + used
        else:
            new_next = np.broadcast_to(np.asarray(start, dtype=np.int64), systems.shape) + used
        s = self.stats
        _accumulate_prefix(systems, np.ascontiguousarray(values, dtype=np.float64), used,
                           np.ascontiguousarray(new_next, dtype=np.int64), s.n, s.sums, s.sumsq,
                           s.next_rep)
        s.total += k_used
        self.report_progress()

    def accept_sequence(self, systems, values) -> None:
        """Count samples given one by one: values[j] is the next replication of systems[j]
        (each system's samples in replication order, as simulated by :meth:`draw_ahead`)."""
        systems = np.ascontiguousarray(systems, dtype=np.int64)
        values = np.ascontiguousarray(values, dtype=np.float64)
        if systems.shape != values.shape or systems.ndim != 1:
            raise ValueError("accept_sequence needs one system per value")
        if self.budget is not None and self.stats.total + systems.shape[0] > self.budget:
            raise BudgetExceededError(
                f"procedure used {systems.shape[0]} samples with {self.budget - self.stats.total} "
                f"of budget {self.budget} left")
        s = self.stats
        _accumulate_sequence(systems, values, s.n, s.sums, s.sumsq, s.next_rep)
        s.total += int(systems.shape[0])
        self.report_progress()

    def draw_counts(self, systems, counts, *, split: bool = True) -> list[np.ndarray] | np.ndarray:
        """Draw counts[j] more samples of systems[j]; returns one array per system (or, with
        ``split=False``, all values in one flat array, system by system)."""
        systems = np.asarray(systems, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        if systems.shape != counts.shape or (counts < 0).any():
            raise ValueError("draw_counts needs one non-negative count per system")
        total = int(counts.sum())
        if total == 0:
            return [np.empty(0) for _ in systems]
        if self.budget is not None and self.stats.total + total > self.budget:
            raise BudgetExceededError(
                f"procedure asked for {total} samples with {self.budget - self.stats.total} of budget "
                f"{self.budget} left")
        sys_flat, reps = self._count_reps(systems, counts)
        values = self._simulate(sys_flat, reps)
        self._add_flat(systems, counts, sys_flat, values)
        return np.split(values, np.cumsum(counts)[:-1]) if split else values

    def _count_reps(self, systems: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sys_flat = np.repeat(systems, counts)
        offsets = np.cumsum(counts) - counts
        within = np.arange(int(counts.sum())) - np.repeat(offsets, counts)
        return sys_flat, np.repeat(self.stats.next_rep[systems], counts) + within

    def _add_flat(self, systems, counts, sys_flat, values) -> None:
        s = self.stats
        np.add.at(s.n, systems, counts)
        _accumulate_flat(sys_flat, values, s.sums, s.sumsq)
        s.next_rep[systems] += counts
        s.total += values.size
        s.simulated += values.size
        self.report_progress()

    def _simulate(self, sys_local: np.ndarray, reps: np.ndarray) -> np.ndarray:
        m = sys_local.shape[0]
        sys_global = self.global_ids(sys_local)
        values = np.asarray(self.executor.simulate(sys_global, reps), dtype=np.float64)
        return check_values(values, sys_global, reps)

    # ------------------------------------------------------------------ asynchronous (PASS)
    def submit(self, tag: int, systems, counts) -> None:
        """Reserve counts[j] next replications of systems[j] and send them to the executor.

        The budget counts reserved samples, so it is never exceeded; the values
        come back through :meth:`collect` and are counted there.
        """
        systems = np.asarray(systems, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        total = int(counts.sum())
        reserved = sum(int(s.shape[0]) for s, _ in self._pending.values())
        if self.budget is not None and self.stats.total + reserved + total > self.budget:
            raise BudgetExceededError(
                f"procedure asked for {total} samples with {self.budget - self.stats.total - reserved} "
                f"of budget {self.budget} left")
        sys_flat, reps = self._count_reps(systems, counts)
        self.stats.next_rep[systems] += counts
        self._pending[int(tag)] = (sys_flat, reps)
        self.executor.submit(int(tag), self.global_ids(sys_flat), reps)

    def collect(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Wait for at least one submitted job; count its samples; returns [(tag, systems, values)]."""
        out = []
        for tag, _g, reps, values in self.executor.wait_any():
            sys_flat, my_reps = self._pending.pop(int(tag))
            values = check_values(np.asarray(values, dtype=np.float64), self.global_ids(sys_flat), my_reps)
            s = self.stats
            np.add.at(s.n, sys_flat, 1)
            np.add.at(s.sums, sys_flat, values)
            np.add.at(s.sumsq, sys_flat, values * values)
            s.total += values.size
            s.simulated += values.size
            out.append((int(tag), sys_flat, values))
        self.report_progress()
        return out

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def supports_async(self) -> bool:
        return bool(getattr(self.executor, "supports_async", False))

    def begin_async(self) -> None:
        self._pending.clear()
        self.executor.begin_async()

    def async_capacity(self) -> int:
        """How many more jobs the executor can take now."""
        return int(self.executor.async_capacity())

    # ------------------------------------------------------------------ progress
    def report_progress(self, **info) -> None:
        """Tell the progress callback where the run stands (total used, simulated, extras)."""
        if self.progress is not None:
            self._emit_progress(self.stats.total, self.stats.simulated, info)

    def _emit_progress(self, total: int, simulated: int, info: dict) -> None:
        if self._progress_kw:
            self.progress(total, simulated=simulated, **info)
        else:
            self.progress(total)

    # ------------------------------------------------------------------ statistics
    def means(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.sums / np.maximum(self.n, 1), np.nan)

    def variances(self) -> np.ndarray:
        """Unbiased sample variances from running sums (nan where n < 2)."""
        n = self.n.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (self.sumsq - self.sums * self.sums / n) / (n - 1)
        return np.where(self.n >= 2, np.maximum(v, 0.0), np.nan)

    # ------------------------------------------------------------------ groups
    def run_groups(self, fn: Callable, groups: Sequence[np.ndarray], *,
                   costs: Sequence[float] | None = None, per_task: Sequence[dict] | None = None,
                   starts: Sequence[int] | None = None, **kwargs) -> list:
        """Run ``fn(sub_context, **kwargs, **per_task[j])`` on each group j of local system ids.

        ``costs`` (optional, one per group) estimate each group's work; parallel
        executors place the largest first (LPT). They never change the result.
        ``per_task`` (optional, one dict per group) adds keyword arguments of its own.
        ``starts`` (optional, one per group): every system of group j starts at
        replication starts[j] instead of its own next one (CRN alignment).

        ``fn`` must be a module-level function returning plain data (lists,
        numbers, arrays); groups may run on other processes or ranks. Each
        sub-context covers one group (local ids 0..len-1 in group order) and
        starts at the systems' current replication indices. Statistics are
        merged back; results come back in group order.
        """
        if costs is not None and len(costs) != len(groups):
            raise ValueError(f"costs needs one value per group ({len(groups)}), got {len(costs)}")
        if per_task is not None and len(per_task) != len(groups):
            raise ValueError(f"per_task needs one dict per group ({len(groups)}), got {len(per_task)}")
        tasks = []
        for j, g in enumerate(groups):
            g = np.asarray(g, dtype=np.int64)
            kw = kwargs if per_task is None else {**kwargs, **per_task[j]}
            nxt = self.stats.next_rep[g].copy() if starts is None else np.full(g.shape[0], int(starts[j]))
            task = {"systems": self.global_ids(g), "next_rep": nxt, "kwargs": kw}
            if costs is not None:
                task["cost"] = float(costs[j])
            tasks.append(task)
        outs = self.executor.map_groups(fn, tasks)
        results = []
        for g, (res, stats) in zip(groups, outs):
            self.stats.merge(SampleStats.from_dict(stats), np.asarray(g, dtype=np.int64))
            results.append(res)
        if self.budget is not None and self.stats.total > self.budget:
            raise BudgetExceededError(f"groups used {self.stats.total} samples, over the budget {self.budget}")
        self.report_progress()
        return results

    def child(self, local: np.ndarray, stats: SampleStats | None = None) -> "SamplingContext":
        """A context over the systems ``local`` (in that order) with statistics of its own
        (zero, or ``stats`` when resuming), sharing this one's executor, budget and progress.

        Work done on a child and merged back with :meth:`merge_child` gives the same
        numbers as the same work sent to a worker through :meth:`run_groups`.
        """
        local = np.asarray(local, dtype=np.int64)
        parent = self

        def forward(total: int, simulated: int = 0, **info) -> None:
            parent._emit_progress(parent.stats.total + total, parent.stats.simulated + simulated, info)

        sub = SamplingContext(self.problem, self.streams, budget=self.remaining_budget(),
                              executor=self.executor, systems=self.global_ids(local),
                              next_rep=self.stats.next_rep[local],
                              progress=forward if self.progress is not None else None)
        sub.trace = self.trace
        sub.wants_estimates = self.wants_estimates
        if stats is not None:
            sub.restore_stats(stats)
        return sub

    def merge_child(self, child: "SamplingContext", local: np.ndarray) -> None:
        """Add a child's statistics (see :meth:`child`) into these."""
        self.stats.merge(child.stats, np.asarray(local, dtype=np.int64))
        self.report_progress()

    def export_stats(self) -> dict:
        return self.stats.to_dict()

    # ------------------------------------------------------------------ trace and checkpoints
    def log(self, stage: str, **info) -> None:
        """Record a stage in the trace (total samples so far added)."""
        entry = {"stage": stage, "total_samples": int(self.stats.total)}
        entry.update({k: _plain(v) for k, v in info.items()})
        self.trace.append(entry)

    def boundary(self, state: dict, *, force: bool = False) -> None:
        """A point where the procedure's ``state`` (arrays and scalars) is complete.

        The checkpointer writes it when forced, when its interval has passed,
        or when a stop was requested (then the run raises Interrupted).
        """
        if self.checkpointer is None:
            return
        self.checkpointer.at_boundary(self, state, force=force)


def check_values(values: np.ndarray, sys_global: np.ndarray, reps: np.ndarray) -> np.ndarray:
    """Values of a block, or a SimulationError naming the first bad (system, replication)."""
    m = sys_global.shape[0]
    if values.shape != (m,):
        raise SimulationError(f"simulation returned shape {values.shape}, expected ({m},)",
                              system=int(sys_global[0]), replication=int(reps[0]))
    j = first_non_finite(values)
    if j >= 0:
        raise SimulationError(f"simulation returned non-finite value {values[j]}",
                              system=int(sys_global[j]), replication=int(reps[j]))
    return values


@numba.njit(cache=True)
def first_non_finite(values) -> int:
    """Index of the first NaN or infinite value (-1 if none): one pass, no temporaries."""
    for j in range(values.shape[0]):
        if not np.isfinite(values[j]):
            return j
    return -1


@numba.njit(cache=True)
def _accumulate_flat(systems, values, sums, sumsq):
    """Add values[j] to the sums of systems[j], in order (the numbers np.add.at gives)."""
    for j in range(systems.shape[0]):
        v = values[j]
        sums[systems[j]] += v
        sumsq[systems[j]] += v * v


@numba.njit(cache=True)
def _accumulate_sequence(systems, values, n, sums, sumsq, next_rep):
    """values[j] is one more sample (the next replication) of systems[j], added in order."""
    for j in range(systems.shape[0]):
        i = systems[j]
        v = values[j]
        sums[i] += v
        sumsq[i] += v * v
        n[i] += 1
        next_rep[i] += 1


@numba.njit(cache=True)
def _accumulate_prefix(systems, values, used, new_next, n, sums, sumsq, next_rep):
    """One pass: counts, sums, sums of squares of the first used[a] values of each row.

    Values are added one at a time in replication order, so the sums are the same
    floating-point numbers however the samples were split into blocks."""
    for a in range(systems.shape[0]):
        i = systems[a]
        u = used[a]
        for b in range(u):
            v = values[a, b]
            sums[i] += v
            sumsq[i] += v * v
        n[i] += u
        if u > 0 and new_next[a] > next_rep[i]:
            next_rep[i] = new_next[a]


def _accepts_keywords(fn) -> bool:
    if fn is None:
        return False
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind == p.VAR_KEYWORD for p in params)


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


__all__ = ["SamplingContext", "SampleStats", "SerialExecutor", "run_group_task", "check_values",
           "Interrupted"]
