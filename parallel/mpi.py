"""MPI backend: coordinator (rank 0) and workers (ranks 1..P-1); mpi4py imported lazily.

Rank 0 runs the procedure and schedules; it also simulates jobs from the tail
of the queue while every worker is busy, so ``mpiexec -n P`` has P simulating
ranks and ``-n 1`` runs everything on rank 0. Messages: a small pickled header
on tag ``CTRL``; the index arrays of a simulation chunk (one int64 (2, m)
array) and the float64 values coming back travel as raw buffers
(``Isend``/``Recv``) on tag ``DATA``. The problem is pickled once per bind.

Faults: a worker reports an exception or a non-finite output with its system,
replication and rank; rank 0 raises :class:`rands.errors.SimulationError`. On
close after a failure rank 0 tells the workers to stop and, if they do not
answer within ``abort_after_s`` (a worker stuck in a long simulation), calls
``MPI_Abort`` so that nothing hangs.
"""
from __future__ import annotations

import atexit
import pickle
import signal
import sys
import time

import numpy as np

from rands.errors import ParameterError

from ._pool import Job, PoolExecutor, run_group_job, run_sim_job

CTRL = 11
DATA = 12


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ParameterError("backend 'mpi' needs mpi4py (pip install 'rands[mpi]') and an MPI "
                             f"library; import failed: {exc}") from None
    return MPI


def _wait_for_message(comm, status) -> None:
    """Wait for rank 0 without pinning a core: probe, then back off to 1 ms sleeps."""
    t0 = time.perf_counter()
    while not comm.Iprobe(source=0, tag=CTRL, status=status):
        waited = time.perf_counter() - t0
        # yield for the first 2 ms (a reply is usually that close), then sleep, at most 1 ms
        time.sleep(0 if waited < 2e-3 else min(1e-3, waited / 20))


def worker_loop(comm) -> None:
    """Serve rank 0 until it sends "stop". Returns normally (the caller then exits quietly)."""
    MPI = _mpi()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # rank 0 checkpoints and stops us
    rank = comm.Get_rank()
    problem = streams = None
    pending: list = []
    status = MPI.Status()
    while True:
        _wait_for_message(comm, status)
        header = comm.recv(source=0, tag=CTRL)
        kind = header[0]
        if kind == "stop":
            MPI.Request.Waitall(pending)
            comm.send(("stopped", rank), dest=0, tag=CTRL)
            return
        if kind == "bind":
            new_problem, streams = pickle.loads(header[1])
            problem = problem if new_problem is None else new_problem
            continue
        index = header[1]
        if kind == "sim":
            m = header[2]
            buf = np.empty((2, m), dtype=np.int64)
            comm.Recv(buf, source=0, tag=DATA)
            reply = run_sim_job(problem, streams, buf[0], buf[1])
        else:
            reply = run_group_job(problem, streams, header[2], header[3])
        MPI.Request.Waitall(pending)   # previous reply delivered before reusing buffers
        pending = []
        if kind == "sim" and reply[0] == "ok":
            values = reply[1]
            pending.append(comm.isend(("ok", None, reply[2], index), dest=0, tag=CTRL))
            pending.append(comm.Isend(values, dest=0, tag=DATA))   # values stay alive in reply
            keep = values  # noqa: F841 - referenced until the next Waitall
        else:
            pending.append(comm.isend(reply + (index,), dest=0, tag=CTRL))


class MPIExecutor(PoolExecutor):
    """Coordinator on rank 0 of ``comm`` (COMM_WORLD by default)."""

    name = "mpi"

    def __init__(self, comm=None, *, coordinator_simulates: bool = True, abort_after_s: float = 3.0,
                 **options) -> None:
        MPI = _mpi()
        self._MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        if self.comm.Get_rank() != 0:
            raise RuntimeError("MPIExecutor lives on rank 0; other ranks run worker_loop")
        self.size = self.comm.Get_size()
        super().__init__(self.size - 1, coordinator_simulates=coordinator_simulates, **options)
        self.abort_after_s = float(abort_after_s)
        self._sends: list = []
        self._buffers: dict = {}
        self._job_sizes: dict = {}
        self._status = MPI.Status()
        atexit.register(self.close)

    def _counts_coordinator(self) -> bool:
        return self.coordinator_simulates

    def _worker_rank(self, worker: int) -> int:
        return worker + 1

    def _local_rank(self) -> int:
        return 0

    def _reap_sends(self) -> None:
        if self._sends:
            keep = []
            for r in self._sends:
                if r.Test():
                    self._buffers.pop(id(r), None)
                else:
                    keep.append(r)
            self._sends = keep

    def _bind_workers(self, payload: bytes) -> None:
        for w in range(self.n_remote):
            self._sends.append(self.comm.isend(("bind", payload), dest=w + 1, tag=CTRL))
        self._reap_sends()

    def _send(self, worker: int, job: Job) -> None:
        dest = worker + 1
        if job.kind == "sim":
            buf = np.empty((2, job.size), dtype=np.int64)
            buf[0] = job.systems
            buf[1] = job.reps
            self._job_sizes[(worker, job.index)] = job.size
            self._sends.append(self.comm.isend(("sim", job.index, job.size), dest=dest, tag=CTRL))
            self._sends.append(self.comm.Isend(buf, dest=dest, tag=DATA))
            self._buffers[id(self._sends[-1])] = buf   # alive until the send completes
        else:
            self._sends.append(self.comm.isend(("group", job.index, job.fn, job.task), dest=dest, tag=CTRL))
        self._reap_sends()

    def _recv_one(self, source: int) -> tuple[int, tuple]:
        header = self.comm.recv(source=source, tag=CTRL)
        w = source - 1
        if header[0] == "ok" and header[1] is None:   # simulation values follow as a buffer
            m = self._job_sizes.pop((w, header[-1]))
            values = np.empty(m, dtype=np.float64)
            self.comm.Recv(values, source=source, tag=DATA)
            header = ("ok", values, header[2], header[3])
        else:
            self._job_sizes.pop((w, header[-1]), None)
        return w, header

    def _poll(self, block: bool) -> list[tuple[int, tuple]]:
        out = []
        MPI = self._MPI
        t0 = time.perf_counter()
        while True:
            if self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=CTRL, status=self._status):
                out.append(self._recv_one(self._status.Get_source()))
                continue
            if out or not block:
                self._reap_sends()
                return out
            self._check_hung()
            # blocking wait without burning the core a worker may need
            waited = time.perf_counter() - t0
            time.sleep(0 if waited < 2e-3 else min(1e-3, waited / 20))

    def _shutdown(self, failed: bool) -> None:
        MPI = self._MPI
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass
        if self.n_remote == 0:
            return
        for w in range(self.n_remote):
            self._sends.append(self.comm.isend(("stop",), dest=w + 1, tag=CTRL))
        stopped = set()
        deadline = time.monotonic() + (self.abort_after_s if failed else 3600.0)
        while len(stopped) < self.n_remote:
            if self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=CTRL, status=self._status):
                src = self._status.Get_source()
                header = self.comm.recv(source=src, tag=CTRL)
                if header[0] == "stopped":
                    stopped.add(src)
                elif header[0] == "ok" and header[1] is None:   # drain a late reply's buffer
                    m = self._job_sizes.pop((src - 1, header[-1]), 0)
                    self.comm.Recv(np.empty(m, dtype=np.float64), source=src, tag=DATA)
                continue
            if time.monotonic() > deadline:
                if self.last_error:
                    sys.stderr.write(f"rands: error: {self.last_error}\n")
                sys.stderr.write(f"rands: workers {sorted(set(range(1, self.size)) - stopped)} did not stop "
                                 f"within {self.abort_after_s:.0f} s after the error; aborting\n")
                sys.stderr.flush()
                self.comm.Abort(1)
            time.sleep(1e-3)
        MPI.Request.Waitall(self._sends)
        self._sends = []
        self._buffers.clear()


def make_mpi_executor(workers: int | None = None, **options):
    """Rank 0: the coordinator executor. Ranks >= 1: serve until stopped, then None."""
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    if workers is not None and workers != size:
        raise ParameterError(f"workers={workers} does not match the MPI world size {size}: with the mpi "
                             "backend the number of ranks is set by `mpiexec -n P` (leave workers out)")
    warm = bool(options.pop("warm", True))
    t0 = time.perf_counter()
    if warm:     # every rank loads the compiled kernels before the first selection starts
        from rands.warmup import warm_kernels
        warm_kernels()
    comm.Barrier()
    if options.get("sim_timeout") is not None:      # the hang guard on every rank (after warm-up)
        from rands import timelimit
        timelimit.set_limit(options["sim_timeout"])
    if comm.Get_rank() == 0:
        ex = MPIExecutor(comm, **options)
        ex.startup_s = time.perf_counter() - t0
        return ex
    worker_loop(comm)
    return None


__all__ = ["MPIExecutor", "worker_loop", "make_mpi_executor"]
