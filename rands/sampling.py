"""The sampling context: what a procedure sees while it runs.

A procedure asks the context for blocks of samples and reads back values and
sufficient statistics; the context owns the statistics, the replication index
of every system, the budget, the trace, checkpoints and the executor that
decides where blocks run. Procedures never touch ranks, processes or files.

Replication indices: system i's samples are its replications 0, 1, 2, ... in
order, so its t-th sample is the same number however the run is partitioned.
``draw(systems, n, start=r0)`` asks for replications r0..r0+n-1 of each system
instead (CRN pairing of systems whose counts differ, as in KT's later rounds);
a system's next replication is then max(next, r0 + n).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numba
import numpy as np

from .errors import BudgetExceededError, Interrupted, SimulationError
from .streams import Streams


class SerialExecutor:
    """Runs every block in this process. The reference for all backends."""

    n_workers = 1
    name = "serial"

    def __init__(self) -> None:
        self.problem = None
        self.streams = None
        self.sim_time = 0.0

    def bind(self, problem, streams: Streams) -> None:
        self.problem, self.streams = problem, streams

    def simulate(self, systems: np.ndarray, reps: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.problem.simulate(systems, reps, self.streams)
        self.sim_time += time.perf_counter() - t0
        return out

    def map_groups(self, fn: Callable, tasks: list[dict]) -> list[tuple[Any, dict]]:
        return [run_group_task(self.problem, self.streams, fn, task) for task in tasks]

    def accounting(self, wall: float) -> dict:
        return {"backend": self.name, "workers": 1, "sim_time": [self.sim_time],
                "utilization": [self.sim_time / wall if wall > 0 else 0.0]}

    def close(self) -> None:
        pass


def run_group_task(problem, streams: Streams, fn: Callable, task: dict) -> tuple[Any, dict]:
    """Run ``fn(context, **task['kwargs'])`` on a sub-context over ``task['systems']``.

    Returns fn's result (plain data) and the sub-context's statistics. Every
    executor calls this, in whatever process holds the group.
    """
    sub = SamplingContext(problem, streams, systems=task["systems"], next_rep=task["next_rep"])
    result = fn(sub, **task.get("kwargs", {}))
    return result, sub.export_stats()


class SamplingContext:
    """Statistics, replication indices and budget of one selection run.

    Parameters
    ----------
    problem, streams : what to sample and its random inputs.
    budget : maximum total samples, or None. Exceeding it raises BudgetExceededError.
    executor : where blocks run (default: this process).
    systems : global ids of the systems this context covers (a group); default all.
    next_rep : starting replication index of each covered system.
    """

    def __init__(self, problem, streams: Streams, *, budget: int | None = None, executor=None,
                 systems: np.ndarray | None = None, next_rep: np.ndarray | None = None,
                 checkpointer=None, progress=None) -> None:
        self.problem = problem
        self.streams = streams
        self.budget = None if budget is None else int(budget)
        self.executor = executor if executor is not None else SerialExecutor()
        if self.executor.problem is not problem or self.executor.streams is not streams:
            self.executor.bind(problem, streams)
        if systems is None:
            self.systems = None
            self.k = int(problem.k)
        else:
            self.systems = np.asarray(systems, dtype=np.int64)
            self.k = int(self.systems.shape[0])
        self.n = np.zeros(self.k, dtype=np.int64)
        self.sums = np.zeros(self.k)
        self.sumsq = np.zeros(self.k)
        self.next_rep = (np.zeros(self.k, dtype=np.int64) if next_rep is None
                         else np.array(next_rep, dtype=np.int64))
        self.total = 0
        self.trace: list[dict] = []
        self.checkpointer = checkpointer
        self.progress = progress
        self.restored: dict | None = None
        if checkpointer is not None:
            self.restored = checkpointer.restore(self)

    # ------------------------------------------------------------------ sampling
    def global_ids(self, local: np.ndarray) -> np.ndarray:
        local = np.asarray(local, dtype=np.int64)
        return local if self.systems is None else self.systems[local]

    def draw(self, systems, n: int, *, start: int | None = None) -> np.ndarray:
        """Draw n more samples of each of ``systems`` (local ids); returns (len, n).

        Replications are each system's next n, or start..start+n-1 for all.
        """
        systems = np.asarray(systems, dtype=np.int64)
        n = int(n)
        m = systems.shape[0]
        if n <= 0 or m == 0:
            return np.empty((m, max(n, 0)))
        if start is None:
            reps = self.next_rep[systems][:, None] + np.arange(n)[None, :]
        else:
            reps = np.broadcast_to(int(start) + np.arange(n)[None, :], (m, n))
        sys_flat = np.repeat(systems, n)
        values = self._simulate(sys_flat, reps.ravel()).reshape(m, n)
        self._account(systems, values, reps[:, -1] + 1)
        return values

    def draw_counts(self, systems, counts) -> list[np.ndarray]:
        """Draw counts[j] more samples of systems[j]; returns one array per system."""
        systems = np.asarray(systems, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        if systems.shape != counts.shape or (counts < 0).any():
            raise ValueError("draw_counts needs one non-negative count per system")
        total = int(counts.sum())
        if total == 0:
            return [np.empty(0) for _ in systems]
        sys_flat = np.repeat(systems, counts)
        offsets = np.cumsum(counts) - counts
        within = np.arange(total) - np.repeat(offsets, counts)
        reps = np.repeat(self.next_rep[systems], counts) + within
        values = self._simulate(sys_flat, reps)
        np.add.at(self.n, systems, counts)
        np.add.at(self.sums, sys_flat, values)
        np.add.at(self.sumsq, sys_flat, values * values)
        self.next_rep[systems] += counts
        self.total += total
        self._tick(total)
        return np.split(values, np.cumsum(counts)[:-1])

    def _simulate(self, sys_local: np.ndarray, reps: np.ndarray) -> np.ndarray:
        m = sys_local.shape[0]
        if self.budget is not None and self.total + m > self.budget:
            raise BudgetExceededError(
                f"procedure asked for {m} samples with {self.budget - self.total} of budget {self.budget} left")
        sys_global = self.global_ids(sys_local)
        values = np.asarray(self.executor.simulate(sys_global, reps), dtype=np.float64)
        if values.shape != (m,):
            raise SimulationError(f"simulation returned shape {values.shape}, expected ({m},)",
                                  system=int(sys_global[0]), replication=int(reps[0]))
        bad = ~np.isfinite(values)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise SimulationError(f"simulation returned non-finite value {values[j]}",
                                  system=int(sys_global[j]), replication=int(reps[j]))
        return values

    def _account(self, systems: np.ndarray, values: np.ndarray, new_next: np.ndarray) -> None:
        _accumulate(systems, values, np.ascontiguousarray(new_next, dtype=np.int64),
                    self.n, self.sums, self.sumsq, self.next_rep)
        self.total += values.size
        self._tick(values.size)

    def _tick(self, m: int) -> None:
        if self.progress is not None:
            self.progress(self.total)

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
                   costs: Sequence[float] | None = None, **kwargs) -> list:
        """Run ``fn(sub_context, **kwargs)`` on each group of local system ids.

        ``costs`` (optional, one per group) estimate each group's work; parallel
        executors place the largest first (LPT). They never change the result.

        ``fn`` must be a module-level function returning plain data (lists,
        numbers, arrays); groups may run on other processes or ranks. Each
        sub-context covers one group (local ids 0..len-1 in group order) and
        starts at the systems' current replication indices. Statistics are
        merged back; results come back in group order.
        """
        if costs is not None and len(costs) != len(groups):
            raise ValueError(f"costs needs one value per group ({len(groups)}), got {len(costs)}")
        tasks = []
        for j, g in enumerate(groups):
            g = np.asarray(g, dtype=np.int64)
            task = {"systems": self.global_ids(g), "next_rep": self.next_rep[g].copy(), "kwargs": kwargs}
            if costs is not None:
                task["cost"] = float(costs[j])
            tasks.append(task)
        outs = self.executor.map_groups(fn, tasks)
        results = []
        for g, (res, stats) in zip(groups, outs):
            g = np.asarray(g, dtype=np.int64)
            self.n[g] += stats["n"]
            self.sums[g] += stats["sums"]
            self.sumsq[g] += stats["sumsq"]
            self.next_rep[g] = np.maximum(self.next_rep[g], stats["next_rep"])
            self.total += int(stats["total"])
            results.append(res)
        if self.budget is not None and self.total > self.budget:
            raise BudgetExceededError(f"groups used {self.total} samples, over the budget {self.budget}")
        self._tick(0)
        return results

    def export_stats(self) -> dict:
        return {"n": self.n, "sums": self.sums, "sumsq": self.sumsq, "next_rep": self.next_rep,
                "total": self.total}

    # ------------------------------------------------------------------ trace and checkpoints
    def log(self, stage: str, **info) -> None:
        """Record a stage in the trace (total samples so far added)."""
        entry = {"stage": stage, "total_samples": int(self.total)}
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


@numba.njit(cache=True)
def _accumulate(systems, values, new_next, n, sums, sumsq, next_rep):
    """One pass: counts, sums, sums of squares and next replication of each drawn row."""
    width = values.shape[1]
    for a in range(systems.shape[0]):
        i = systems[a]
        s = 0.0
        q = 0.0
        for b in range(width):
            v = values[a, b]
            s += v
            q += v * v
        n[i] += width
        sums[i] += s
        sumsq[i] += q
        if new_next[a] > next_rep[i]:
            next_rep[i] = new_next[a]


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


__all__ = ["SamplingContext", "SerialExecutor", "run_group_task", "Interrupted"]
