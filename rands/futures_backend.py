"""Any ``concurrent.futures.Executor`` as a rands backend.

``FuturesExecutor(pool)`` runs simulation blocks and group tasks on ``pool``
(``ProcessPoolExecutor``, ``mpi4py.futures.MPIPoolExecutor``, a Dask
``Client.get_executor()``, ...). The problem and streams are pickled once per
``bind`` and sent with every task as bytes (a worker keeps the last problem it
unpickled, keyed by a token, so it unpickles each problem once); blocks are cut
into contiguous chunks and reassembled in order, so the values (and every
result) are identical to the serial backend: sample (i, r) depends only on
(seed, i, r). A failing simulation comes back as a SimulationError naming the
system and replication (the pool does not say which worker ran it).
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import os
import pickle
import time
import uuid
from typing import Any, Callable

import numpy as np

from .errors import ParameterError, SimulationError
from .jobs import run_group_job, run_sim_job

_CACHE: dict[str, tuple] = {}      # worker side: token -> (problem, streams)


def _bound(token: str, payload: bytes):
    hit = _CACHE.get(token)
    if hit is None:
        _CACHE.clear()
        hit = _CACHE[token] = pickle.loads(payload)
    return hit


def _sim_task(token: str, payload: bytes, systems: np.ndarray, reps: np.ndarray):
    problem, streams = _bound(token, payload)
    return run_sim_job(problem, streams, systems, reps)


def _group_task(token: str, payload: bytes, fn: Callable, task: dict):
    problem, streams = _bound(token, payload)
    return run_group_job(problem, streams, fn, task)


class FuturesExecutor:
    """Adapter from a ``concurrent.futures.Executor`` to the rands executor interface.

    Parameters
    ----------
    pool : the executor; it stays the caller's (``close`` does not shut it down
        unless ``own=True``).
    workers : its number of workers (default: ``pool._max_workers`` when present).
    min_chunk_s : smallest chunk of a block worth a task, at the measured cost per sample.
    local_threshold_s : blocks estimated cheaper than this run in this process.
    """

    name = "futures"

    def __init__(self, pool: cf.Executor, *, workers: int | None = None, min_chunk_s: float = 5e-3,
                 local_threshold_s: float = 5e-4, own: bool = False) -> None:
        if not isinstance(pool, cf.Executor):
            raise ParameterError(f"FuturesExecutor needs a concurrent.futures.Executor, got "
                                 f"{type(pool).__name__}")
        if workers is None:
            workers = getattr(pool, "_max_workers", None) or os.cpu_count() or 1
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ParameterError(f"workers must be an integer >= 1, got {workers!r}")
        self.pool, self.n_workers, self.own = pool, int(workers), bool(own)
        self.min_chunk_s, self.local_threshold_s = float(min_chunk_s), float(local_threshold_s)
        self.problem = self.streams = None
        self._token, self._payload = "", b""
        self._cost = math.nan
        self.reset_accounting()

    # ------------------------------------------------------------------ interface
    def bind(self, problem, streams) -> None:
        self.problem, self.streams = problem, streams
        self._token = uuid.uuid4().hex
        self._payload = pickle.dumps((problem, streams), protocol=pickle.HIGHEST_PROTOCOL)

    def cost_per_sample(self) -> float:
        return float(self._cost)

    def simulate(self, systems: np.ndarray, reps: np.ndarray) -> np.ndarray:
        systems = np.ascontiguousarray(systems, dtype=np.int64)
        reps = np.ascontiguousarray(reps, dtype=np.int64)
        m = systems.shape[0]
        if m == 0:
            return np.empty(0)
        known = self._cost == self._cost
        if known and m * self._cost < self.local_threshold_s:
            reply = run_sim_job(self.problem, self.streams, systems, reps)
            return self._take(reply, m, local=True)
        per = max(1, int(math.ceil(self.min_chunk_s / self._cost))) if known else max(1, m // (4 * self.n_workers))
        n_chunks = max(1, min(4 * self.n_workers, -(-m // per)))
        bounds = np.linspace(0, m, n_chunks + 1).astype(np.int64)
        futs = [self.pool.submit(_sim_task, self._token, self._payload, systems[a:b], reps[a:b])
                for a, b in zip(bounds[:-1], bounds[1:])]
        out = np.empty(m)
        for (a, b), f in zip(zip(bounds[:-1], bounds[1:]), futs):
            out[a:b] = self._take(f.result(), b - a)
        return out

    def map_groups(self, fn: Callable, tasks: list[dict]) -> list[tuple[Any, dict]]:
        order = sorted(range(len(tasks)), key=lambda j: -float(tasks[j].get("cost", 0.0)))
        futs = {j: self.pool.submit(_group_task, self._token, self._payload, fn,
                                    {key: v for key, v in tasks[j].items() if key != "cost"})
                for j in order}
        out = []
        for j in range(len(tasks)):
            reply = futs[j].result()
            if reply[0] == "err":
                raise SimulationError(reply[1], system=reply[2], replication=reply[3])
            self._busy += reply[2]
            self._jobs += 1
            out.append(reply[1])
        return out

    def _take(self, reply: tuple, m: int, local: bool = False) -> np.ndarray:
        if reply[0] == "err":
            raise SimulationError(reply[1], system=reply[2], replication=reply[3])
        if local:
            self._local_busy += reply[2]
        else:
            self._busy += reply[2]
            self._jobs += 1
        c = reply[2] / max(m, 1)
        self._cost = c if self._cost != self._cost else 0.7 * self._cost + 0.3 * c
        return reply[1]

    def reset_accounting(self) -> None:
        self._busy = 0.0
        self._local_busy = 0.0
        self._jobs = 0
        self._t0 = time.perf_counter()

    def accounting(self, wall: float) -> dict:
        util = self._busy / (self.n_workers * wall) if wall > 0 else 0.0
        return {"backend": f"futures:{type(self.pool).__name__}", "workers": self.n_workers,
                "sim_time": [self._busy], "overall_utilization": min(1.0, util),
                "utilization": [min(1.0, util)], "jobs": [self._jobs],
                "coordinator_sim_time": self._local_busy, "wall_time": wall}

    def close(self) -> None:
        if self.own:
            self.pool.shutdown(wait=True)


def as_executor(backend):
    """A rands executor from ``backend``: None or a rands executor as is, a
    ``concurrent.futures.Executor`` wrapped in :class:`FuturesExecutor`."""
    if isinstance(backend, cf.Executor):
        return FuturesExecutor(backend)
    return backend


__all__ = ["FuturesExecutor", "as_executor"]
