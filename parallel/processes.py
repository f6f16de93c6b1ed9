"""Local worker processes (forkserver on Linux, spawn elsewhere).

The problem and streams are pickled once per ``bind`` and kept by every worker;
afterwards only index arrays go out and float64 arrays come back. Each worker
has its own task queue (a feeder thread, so the coordinator never blocks on a
full pipe) and all share one result queue. A worker that dies is detected
within ``liveness_s`` and reported as a SimulationError, never a hang.
"""
from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import pickle
import queue as _queue
import signal
import sys
import time

from rands.errors import ParameterError, SimulationError

from ._pool import Job, PoolExecutor, run_group_job, run_sim_job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent (the forkserver) dies, and the
    forkserver exits when the coordinator dies (once no worker holds its "alive" pipe, which
    a forkserver child inherits: closed here), so a worker stuck in a simulation never
    outlives a killed run, nor do the forkserver and the resource tracker."""
    from multiprocessing import forkserver
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass


def _worker_main(wid: int, tasks, results, parent_pid: int, warm: bool = True,
                 sim_timeout: float | None = None) -> None:
    """Worker process loop: load the compiled kernels, report ready; then bind, sim, group, stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the coordinator decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    if not _alive(parent_pid):
        return
    seconds = 0.0
    if warm:
        from rands.warmup import warm_kernels
        seconds = warm_kernels()
    from rands import timelimit
    timelimit.set_limit(sim_timeout)                # the hang guard inside this worker
    results.put((wid, ("ready", seconds)))
    problem = streams = None
    while True:
        try:
            msg = tasks.get(timeout=2.0)
        except _queue.Empty:
            if not _alive(parent_pid):   # coordinator gone (killed): exit quietly
                return
            continue
        kind = msg[0]
        if kind == "stop":
            results.put((wid, ("stopped", -1)))
            return
        if kind == "bind":
            new_problem, streams = pickle.loads(msg[1])
            problem = problem if new_problem is None else new_problem
            continue
        index = msg[1]
        if kind == "sim":
            reply = run_sim_job(problem, streams, msg[2], msg[3])
        else:
            reply = run_group_job(problem, streams, msg[2], msg[3])
        results.put((wid, reply + (index,)))


class ProcessExecutor(PoolExecutor):
    """``workers`` local processes; the coordinator (this process) only schedules,
    except blocks too cheap to be worth a message, which it simulates itself
    (counted as ``coordinator_sim_time``)."""

    name = "processes"

    def __init__(self, workers: int | None = None, *, start_method: str | None = None,
                 liveness_s: float = 1.0, warm: bool = True, oversubscribe: bool = False,
                 **options) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ParameterError(f"workers must be an integer >= 1 for the processes backend, got {workers!r}")
        from rands.preflight import check_memory, check_workers
        check_workers("processes", workers, bool(oversubscribe))     # before allocating anything
        check_memory(0, workers=workers, what=f"{workers:,} worker processes")
        if start_method is None:
            start_method = "forkserver" if sys.platform.startswith("linux") else "spawn"
        if start_method not in mp.get_all_start_methods() or start_method == "fork":
            raise ParameterError(f"start_method must be 'spawn' or 'forkserver' (available: "
                                 f"{[m for m in mp.get_all_start_methods() if m != 'fork']}), got {start_method!r}")
        options.setdefault("min_chunk_s", 5e-3)
        super().__init__(workers, coordinator_simulates=False, **options)
        self.liveness_s = float(liveness_s)
        ctx = mp.get_context(start_method)
        t0 = time.perf_counter()
        if start_method == "forkserver":
            preload = ["numpy", "rands", "rands.problems.normal", "rands.parallel._pool"]
            ctx.set_forkserver_preload(preload + (["rands.parallel._forkserver_warm"] if warm else []))
            from multiprocessing import forkserver
            forkserver.ensure_running()   # it loads the kernels while this process loads its own
        self._results = ctx.Queue()
        self._tasks = [ctx.Queue() for _ in range(workers)]
        for q in self._tasks:     # never block interpreter exit flushing to a dead worker
            q.cancel_join_thread()
        self._procs = [ctx.Process(target=_worker_main,
                                   args=(w, self._tasks[w], self._results, os.getpid(), bool(warm),
                                         self.sim_timeout),
                                   daemon=True, name=f"rands-worker-{w + 1}")
                       for w in range(workers)]
        # a forkserver child starts with the forkserver's kernels, so it is started after this
        # process has loaded its own (meanwhile the forkserver loads them); spawned workers load
        # their own, so they start first
        forked = start_method == "forkserver"
        if not forked:
            self._start_workers()
        self.coordinator_warmup_s = 0.0
        if warm:     # this process runs the procedures
            from rands.warmup import warm_kernels
            self.coordinator_warmup_s = warm_kernels()
        if forked:
            self._start_workers()
        self._await_ready()
        self.startup_s = time.perf_counter() - t0

    def _start_workers(self) -> None:
        for p in self._procs:
            p.start()
        atexit.register(self.close)

    def _await_ready(self) -> None:
        """Wait until every worker has loaded the compiled kernels (start-up, not selection time)."""
        ready = set()
        self.worker_warmup_s = [0.0] * self.n_remote
        while len(ready) < self.n_remote:
            try:
                wid, msg = self._results.get(timeout=self.liveness_s)
            except _queue.Empty:
                self._check_alive()
                continue
            if msg[0] == "ready":
                ready.add(wid)
                self.worker_warmup_s[wid] = float(msg[1])

    def _bind_workers(self, payload: bytes) -> None:
        for q in self._tasks:
            q.put(("bind", payload))

    def _send(self, worker: int, job: Job) -> None:
        if job.kind == "sim":
            self._tasks[worker].put(("sim", job.index, job.systems, job.reps))
        else:
            self._tasks[worker].put(("group", job.index, job.fn, job.task))

    def _poll(self, block: bool) -> list[tuple[int, tuple]]:
        out = []
        while True:
            try:
                if block and not out:
                    item = self._results.get(timeout=self.liveness_s)
                else:
                    item = self._results.get_nowait()
            except _queue.Empty:
                if block and not out:
                    self._check_alive()
                    self._check_hung()
                    continue
                return out
            if item[1][0] == "stopped":
                continue
            out.append(item)

    def _check_alive(self) -> None:
        for w, p in enumerate(self._procs):
            if not p.is_alive():
                self._failed = True
                raise SimulationError(f"worker process {w + 1} died (exit code {p.exitcode})",
                                      system=-1, replication=-1, rank=self._worker_rank(w))

    def _worker_rank(self, worker: int) -> int:
        return worker + 1

    def _shutdown(self, failed: bool) -> None:
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass
        for q in self._tasks:
            try:
                q.put(("stop",))
            except (ValueError, OSError):
                pass
        for w in self._hung:          # stuck in a simulation: it would never read "stop"
            self._procs[w].kill()
        grace = 2.0 if failed else 10.0
        for p in self._procs:
            p.join(timeout=grace)
        for p in self._procs:
            if p.is_alive():
                p.kill()              # workers ignore SIGTERM (the coordinator decides)
                p.join(timeout=2.0)
        for q in self._tasks + [self._results]:
            q.close()
            q.cancel_join_thread()
