"""Jobs a worker runs: one simulation chunk or one group task, errors returned as data.

Every backend (processes, MPI ranks, any ``concurrent.futures`` pool) runs these
functions where the work lands; a failure comes back as
("err", message, system, replication) so the coordinator can name them.
"""
from __future__ import annotations

import time
import traceback
from typing import Callable

import numpy as np

from . import timelimit
from .errors import SimulationError
from .sampling import first_non_finite, run_group_task


def locate_failure(problem, streams, systems: np.ndarray, reps: np.ndarray,
                   time_limit_s: float = 2.0) -> tuple[int, int, str] | None:
    """Find the first pair of a failing block that fails on its own (bounded search)."""
    t0 = time.perf_counter()
    for n in range(systems.shape[0]):
        if time.perf_counter() - t0 > time_limit_s:
            return None
        try:
            v = problem.simulate(systems[n:n + 1], reps[n:n + 1], streams)
            v = np.asarray(v, dtype=np.float64)
            if v.shape != (1,) or not np.isfinite(v[0]):
                return int(systems[n]), int(reps[n]), f"simulation returned non-finite value {v}"
        except SimulationError as exc:
            return exc.system, exc.replication, exc.detail
        except Exception as exc:  # noqa: BLE001
            return int(systems[n]), int(reps[n]), f"simulation raised {type(exc).__name__}: {exc}"
    return None


def run_sim_job(problem, streams, systems: np.ndarray, reps: np.ndarray, check: bool = True):
    """Simulate one chunk. Returns ("ok", values, busy) or ("err", message, system, replication).

    ``check=False`` skips the scan for NaN and infinite values, for a caller whose sampling
    context scans the block anyway (the processes backend's coordinator)."""
    t0 = time.perf_counter()
    try:
        values = np.ascontiguousarray(timelimit.simulate(problem, systems, reps, streams),
                                      dtype=np.float64)
    except SimulationError as exc:
        return ("err", exc.detail, exc.system, exc.replication)
    except Exception as exc:  # noqa: BLE001 - reported with its location
        where = locate_failure(problem, streams, systems, reps)
        if where is None:
            return ("err", f"simulation raised {type(exc).__name__}: {exc}", int(systems[0]), int(reps[0]))
        return ("err",) + (where[2], where[0], where[1])
    busy = time.perf_counter() - t0
    if values.shape != systems.shape:
        return ("err", f"simulation returned shape {values.shape}, expected {systems.shape}",
                int(systems[0]), int(reps[0]))
    j = first_non_finite(values) if check else -1
    if j >= 0:
        return ("err", f"simulation returned non-finite value {values[j]}", int(systems[j]), int(reps[j]))
    return ("ok", values, busy)


def run_group_job(problem, streams, fn: Callable, task: dict):
    """Run one group task. Returns ("ok", (result, stats), busy) or ("err", message, system, replication)."""
    t0 = time.perf_counter()
    try:
        out = run_group_task(problem, streams, fn, task)
    except SimulationError as exc:
        return ("err", exc.detail, exc.system, exc.replication)
    except Exception as exc:  # noqa: BLE001
        systems = np.asarray(task["systems"])
        nxt = np.asarray(task["next_rep"])
        tb = traceback.format_exc(limit=4)
        return ("err", f"group task {getattr(fn, '__name__', fn)} raised {type(exc).__name__}: {exc}\n{tb}",
                int(systems[0]) if systems.size else -1, int(nxt[0]) if nxt.size else -1)
    stats = out[1]
    stats = {"n": np.asarray(stats["n"]), "sums": np.asarray(stats["sums"]),
             "sumsq": np.asarray(stats["sumsq"]), "next_rep": np.asarray(stats["next_rep"]),
             "total": int(stats["total"])}
    return ("ok", (out[0], stats), time.perf_counter() - t0)


