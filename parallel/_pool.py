"""Coordinator logic shared by the process and MPI backends.

A coordinator owns a list of workers (processes or MPI ranks). Work arrives as
*jobs*: a chunk of a ``simulate`` block, or one group task of ``map_groups``.
Scheduling:

- **chunking**: a ``simulate`` block is cut into contiguous chunks sized from
  the measured cost per sample (at least ``min_chunk_s`` of work each, at most
  ``chunks_per_worker`` per worker), so message overhead is amortised and no
  worker waits long for the last chunk;
- **LPT**: group tasks that carry an estimated ``cost`` are dispatched longest
  first;
- **dynamic dispatch**: each worker holds at most ``depth`` jobs (2: one
  running, one queued, so it never idles on a round trip); a worker that
  finishes early gets the next job. If the coordinator itself simulates
  (MPI rank 0), it takes jobs from the *tail* of the queue (the shortest) while
  every worker is busy.

Results are placed by job index, never by completion order, and sample (i, r)
depends only on (seed, i, r), so every split gives bit-identical values.
"""
from __future__ import annotations

import math
import pickle
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from rands.errors import SimulationError
from rands.jobs import locate_failure, run_group_job, run_sim_job  # noqa: F401 - re-exported

# ---------------------------------------------------------------------------- coordinator side


class Job:
    __slots__ = ("index", "kind", "systems", "reps", "fn", "task", "size", "start")

    def __init__(self, index: int, kind: str, *, systems=None, reps=None, fn=None, task=None):
        self.index = index
        self.kind = kind
        self.systems = systems
        self.reps = reps
        self.fn = fn
        self.task = task
        self.size = 0 if systems is None else int(systems.shape[0])
        self.start = 0


class PoolExecutor:
    """Base of the process and MPI executors: scheduling, accounting, faults.

    Subclasses implement the transport: ``_bind_workers(payload)``,
    ``_send(worker, job)``, ``_poll(block) -> list[(worker, reply)]`` where a
    reply is the tuple of :func:`run_sim_job` / :func:`run_group_job` plus the
    job index, ``_worker_rank(worker)``, ``_shutdown(failed)``.
    """

    name = "pool"

    def __init__(self, n_remote: int, *, coordinator_simulates: bool, depth: int = 2,
                 chunks_per_worker: int = 16, min_chunk_s: float = 2e-3,
                 local_threshold_s: float = 5e-4, min_ship_cost_s: float = 2e-7,
                 sim_timeout: float | None = None, hang_floor_s: float = 300.0,
                 hang_factor: float = 100.0) -> None:
        self.n_remote = int(n_remote)
        self.coordinator_simulates = bool(coordinator_simulates) or self.n_remote == 0
        self.depth = max(1, int(depth))
        self.chunks_per_worker = max(1, int(chunks_per_worker))
        self.min_chunk_s = float(min_chunk_s)
        self.local_threshold_s = float(local_threshold_s)
        # shipping a sample costs ~24 bytes each way (~50-100 ns through a pipe or MPI): below
        # twice that, two workers finish a block later than the coordinator alone
        self.min_ship_cost_s = float(min_ship_cost_s)
        self._problem = None
        self.streams = None
        self._cost = math.nan           # estimated seconds per sample (EMA)
        self._busy = [0.0] * self.n_remote
        self._local_busy = 0.0
        self._jobs_done = [0] * self.n_remote
        self._local_jobs = 0
        self._failed = False
        self._closed = False
        self.last_error: str | None = None
        self._outstanding = [0] * self.n_remote
        # the heartbeat (hang guard): jobs in flight per worker, oldest first, and since when
        # the oldest has been running; see _job_limit
        self.sim_timeout = None if sim_timeout is None else float(sim_timeout)
        self.hang_floor_s, self.hang_factor = float(hang_floor_s), float(hang_factor)
        self._inflight: list[deque] = [deque() for _ in range(self.n_remote)]
        self._since = [0.0] * self.n_remote
        self._hung: set[int] = set()         # workers found hung (the transport kills them on close)
        self._last_check = 0.0

    # ------------------------------------------------------------------ interface
    @property
    def n_workers(self) -> int:
        return self.n_remote + (1 if self.coordinator_simulates and self._counts_coordinator() else 0)

    def _counts_coordinator(self) -> bool:
        return False

    @property
    def problem(self):
        """The bound problem (a sampling context rebinds when problem or streams change)."""
        return self._problem

    @property
    def bound_problem(self):
        return self._problem

    def bind(self, problem, streams) -> None:
        """Send the problem and streams to every worker: the problem once per new problem
        object, the (small) streams at every bind."""
        self._check_open()
        same = problem is self._problem
        if not same:
            self._cost = math.nan    # a new problem: its cost per sample is unknown
        self._problem, self.streams = problem, streams
        if self.n_remote:
            payload = (None, streams) if same else (problem, streams)
            self._bind_workers(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))

    def simulate(self, systems: np.ndarray, reps: np.ndarray) -> np.ndarray:
        self._check_open()
        systems = np.ascontiguousarray(systems, dtype=np.int64)
        reps = np.ascontiguousarray(reps, dtype=np.int64)
        m = systems.shape[0]
        out, head = None, 0
        if m and self._cost != self._cost:
            out = np.empty(m, dtype=np.float64)
            head = self._probe_head(systems, reps, out)
        if head == m:
            return np.empty(0) if out is None else out
        bounds = self._plan_chunks(m - head)
        if bounds is None:   # cheap block: simulate here, no messages (and no copy)
            rest = self._run_local(Job(0, "sim", systems=systems[head:], reps=reps[head:]))
            if out is None:
                return rest
            out[head:] = rest
            return out
        if out is None:
            out = np.empty(m, dtype=np.float64)
        jobs = []
        for j in range(len(bounds) - 1):
            lo, hi = head + bounds[j], head + bounds[j + 1]
            job = Job(j, "sim", systems=systems[lo:hi], reps=reps[lo:hi])
            job.start = int(lo)
            jobs.append(job)
        self._execute(jobs, out=out)
        return out

    def _probe_head(self, systems: np.ndarray, reps: np.ndarray, out: np.ndarray) -> int:
        """Measure the cost per sample on the first block after a bind: simulate its head here,
        1, 2, 4, ... samples, until ``local_threshold_s`` of work or a quarter of the block.

        These samples are part of the block (nothing is drawn twice or thrown away); a
        problem whose one sample costs more than the threshold costs one sample's time here.
        Returns how many samples of the block are done."""
        if self.n_remote == 0:
            return 0

        def run(lo: int, size: int) -> None:
            sl = slice(lo, lo + size)
            out[sl] = self._run_local(Job(0, "sim", systems=systems[sl], reps=reps[sl]))
        return self._timed_doubling(run, max(1, systems.shape[0] // 4))

    def probe_cost(self, system: int, rep: int) -> float:
        """Seconds per sample, measured here when unknown: samples of ``system`` from
        replication ``rep`` on, 1, 2, 4, ... until ``local_threshold_s`` of work (one sample
        when a sample costs more). Their values are discarded; sample values depend only on
        (seed, system, replication), so no result changes. Used to decide, before any block
        was drawn, whether whole groups are worth shipping to the workers."""
        if self._cost != self._cost:
            def run(lo: int, size: int) -> None:
                self._run_local(Job(0, "sim", systems=np.full(size, system, dtype=np.int64),
                                    reps=np.arange(rep + lo, rep + lo + size, dtype=np.int64)))
            self._timed_doubling(run, 1 << 20)
        return float(self._cost)

    def _timed_doubling(self, run: Callable[[int, int], None], limit: int) -> int:
        """Call run(done, size) here with sizes 1, 2, 4, ... until ``local_threshold_s`` of
        work or ``limit`` samples; sets the cost per sample from the time. Returns the count."""
        done, size, busy0 = 0, 1, self._local_busy
        while done < limit and self._local_busy - busy0 < self.local_threshold_s:
            size = min(size, limit - done)
            run(done, size)
            done += size
            size *= 2
        if done:
            self._cost = (self._local_busy - busy0) / done
        return done

    def ships(self, m: int) -> bool:
        """Whether a block of m samples would go to the workers (False: the coordinator runs it)."""
        known = self._cost == self._cost
        return bool(self.n_remote) and not (known and (m * self._cost < self.local_threshold_s
                                                        or self._cost < self.min_ship_cost_s))

    def cost_per_sample(self) -> float:
        """Measured seconds per sample (exponential average over blocks; nan while unknown)."""
        return float(self._cost)

    def map_groups(self, fn: Callable, tasks: list[dict]) -> list[tuple[Any, dict]]:
        self._check_open()
        if not tasks:
            return []
        order = list(range(len(tasks)))
        if any("cost" in t for t in tasks):          # LPT: longest estimated task first
            order.sort(key=lambda j: -float(tasks[j].get("cost", 0.0)))
        jobs = []
        for j in order:
            task = {key: v for key, v in tasks[j].items() if key != "cost"}
            jobs.append(Job(j, "group", fn=fn, task=task))
        return self._execute(jobs)

    def accounting(self, wall: float) -> dict:
        busy = self._worker_busy()
        p = len(busy)
        total = sum(busy)
        util = [b / wall if wall > 0 else 0.0 for b in busy]
        acc = {"backend": self.name, "workers": p, "sim_time": busy, "utilization": util,
               "overall_utilization": total / (p * wall) if wall > 0 and p else 0.0,
               "wall_time": wall, "jobs": self._worker_jobs()}
        if not self._counts_coordinator():
            acc["coordinator_sim_time"] = self._local_busy
        return acc

    def _worker_busy(self) -> list[float]:
        if self._counts_coordinator():
            return [self._local_busy] + list(self._busy)
        return list(self._busy)

    def _worker_jobs(self) -> list[int]:
        if self._counts_coordinator():
            return [self._local_jobs] + list(self._jobs_done)
        return list(self._jobs_done)

    def reset_accounting(self) -> None:
        self._busy = [0.0] * self.n_remote
        self._jobs_done = [0] * self.n_remote
        self._local_busy = 0.0
        self._local_jobs = 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._shutdown(self._failed)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and not isinstance(exc[1], KeyboardInterrupt):
            self._failed = self._failed or isinstance(exc[1], SimulationError)
        self.close()

    # ------------------------------------------------------------------ scheduling
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the {self.name} executor is closed")
        if self._failed:
            raise RuntimeError(f"the {self.name} executor stopped after a simulation error; close it "
                               "and make a new one")

    def _plan_chunks(self, m: int) -> list[int] | None:
        """Chunk boundaries for a block of m samples (None: run it on the coordinator).

        Guided self-scheduling: each chunk is 1/(2P) of what remains, never less
        than ``min_chunk_s`` of work at the measured cost per sample, so chunks
        shrink towards the end of the block (big ones go to the workers first,
        the coordinator takes small ones from the tail) and the last worker to
        finish waits at most one small chunk. With an unknown cost (first block
        after a bind) the floor is m / (64 P) samples.
        """
        if not self.ships(m):
            return None    # cheaper here than the messages (a sample costs less than moving it)
        known = self._cost == self._cost
        p = self.n_remote + (1 if self.coordinator_simulates else 0)
        if known:
            floor = max(1, int(math.ceil(self.min_chunk_s / max(self._cost, 1e-12))))
        else:
            floor = max(1, m // (64 * p))
        self._floor = floor
        bounds = [0]
        left = m
        while left > 0:
            size = min(left, max(floor, int(math.ceil(left / (2 * p)))))
            bounds.append(bounds[-1] + size)
            left -= size
        return bounds

    def _update_cost(self, m: int, busy: float) -> None:
        if m <= 0:
            return
        c = busy / m
        self._cost = c if self._cost != self._cost else 0.7 * self._cost + 0.3 * c

    def _run_local(self, job: Job):
        if job.kind == "sim":
            # a coordinator that is no rank leaves the NaN scan to the sampling context's check
            reply = run_sim_job(self._problem, self.streams, job.systems, job.reps,
                                check=self._counts_coordinator())
        else:
            reply = run_group_job(self._problem, self.streams, job.fn, job.task)
        if reply[0] == "err":
            raise self._fail(reply, self._local_rank())
        self._local_busy += reply[2]
        self._local_jobs += 1
        if job.kind == "sim":
            self._update_cost(job.size, reply[2])
        return reply[1]

    def _fail(self, reply: tuple, rank: int | None) -> SimulationError:
        """Mark the executor failed and build the error naming system, replication and rank."""
        self._failed = True
        exc = SimulationError(reply[1], system=reply[2], replication=reply[3], rank=rank)
        self.last_error = str(exc)
        return exc

    def _local_rank(self) -> int | None:
        return 0

    def _execute(self, jobs: list[Job], out: np.ndarray | None = None) -> list:
        """Run jobs on the workers (and the coordinator when it simulates).

        Group results come back by job index; simulation values are written into
        ``out`` at each job's offset. The coordinator simulates only small pieces
        (``_floor`` samples) cut from the tail of the queue, so it returns to
        serve the workers every few milliseconds.
        """
        results: list = [None] * len(jobs)

        def store(job: Job, value) -> None:
            if out is not None and job.kind == "sim":
                out[job.start:job.start + job.size] = value
            else:
                results[job.index] = value

        if self.n_remote == 0:
            for job in jobs:
                store(job, self._run_local(job))
            return results
        queue = deque(jobs)
        running: dict[tuple[int, int], Job] = {}
        done = 0
        self._outstanding = [0] * self.n_remote
        self._inflight = [deque() for _ in range(self.n_remote)]
        piece = max(1, int(getattr(self, "_floor", 1)))

        participants = self.n_remote + (1 if self.coordinator_simulates else 0)

        def refill() -> None:
            for depth in range(1, self.depth + 1):
                for w in range(self.n_remote):
                    # deeper queues only while plenty of work is left (else the tail waits)
                    limit = depth if (depth == 1 or len(queue) > 2 * participants) else 1
                    if queue and self._outstanding[w] < limit:
                        job = queue.popleft()
                        self._dispatch(w, job)
                        running[(w, job.index)] = job
                        self._outstanding[w] += 1

        refill()
        while done < len(jobs):
            replies = self._poll(block=not (self.coordinator_simulates and queue))
            if not replies and self.coordinator_simulates and queue:
                job = queue[-1]
                if job.kind == "sim" and out is not None and job.size > piece:
                    # cut a small piece off the tail job; the rest stays queued
                    cut = Job(-1, "sim", systems=job.systems[-piece:], reps=job.reps[-piece:])
                    cut.start = job.start + job.size - piece
                    job.systems, job.reps = job.systems[:-piece], job.reps[:-piece]
                    job.size -= piece
                    store(cut, self._run_local(cut))
                    continue
                queue.pop()
                store(job, self._run_local(job))
                done += 1
                continue
            for w, reply in replies:
                index = reply[-1]
                job = running.pop((w, index))
                self._outstanding[w] -= 1
                self._replied(w)
                if reply[0] == "err":
                    raise self._fail(reply, self._worker_rank(w))
                store(job, reply[1])
                self._busy[w] += reply[2]
                self._jobs_done[w] += 1
                if job.kind == "sim":
                    self._update_cost(job.size, reply[2])
                done += 1
            refill()
            self._check_hung()
        return results

    # ------------------------------------------------------------------ heartbeat (hang guard)
    def _dispatch(self, w: int, job: Job) -> None:
        """Send ``job`` to worker ``w``, noting when it starts (now, if ``w`` was idle)."""
        if not self._inflight[w]:
            self._since[w] = time.monotonic()
        self._inflight[w].append(job)
        self._send(w, job)

    def _replied(self, w: int) -> None:
        """Worker ``w`` answered its oldest job; the next one (if any) starts now."""
        if self._inflight[w]:
            self._inflight[w].popleft()
        self._since[w] = time.monotonic()

    def _job_limit(self, job: Job) -> float | None:
        """Seconds a job may run before its worker counts as hung (None: no limit).

        With ``sim_timeout`` (seconds per simulate call): twice ``sim_timeout`` plus 20 s (the
        worker's own alarm stops Python code at ``sim_timeout`` and names the pair within 10 s
        more; this catches compiled code that ignores the alarm). Without: ``hang_factor`` times the job's expected time at the
        measured cost per sample, at least ``hang_floor_s``; no limit before a cost is measured
        or for group tasks (a whole procedure per task), which only ``sim_timeout`` guards.
        """
        if job.kind != "sim":
            return None
        if self.sim_timeout is not None:
            return 2.0 * self.sim_timeout + 20.0
        if self._cost != self._cost:
            return None
        return max(self.hang_floor_s, self.hang_factor * job.size * self._cost)

    def _check_hung(self) -> None:
        """Raise SimulationError for a worker whose oldest job ran past its limit (called while
        the coordinator waits for replies; at most every 0.2 s)."""
        now = time.monotonic()
        if now - self._last_check < 0.2:
            return
        self._last_check = now
        for w, jobs in enumerate(self._inflight):
            if not jobs:
                continue
            job, age = jobs[0], now - self._since[w]
            limit = self._job_limit(job)
            if limit is None or age <= limit:
                continue
            self._failed = True
            s, r = job.systems, job.reps
            rule = (f"sim_timeout = {self.sim_timeout:g} s per call" if self.sim_timeout is not None
                    else f"{self.hang_factor:g} x the measured {self._cost:.3g} s per sample, at least "
                         f"{self.hang_floor_s:g} s")
            exc = SimulationError(f"no reply for {age:.1f} s to a block of {job.size} samples (systems "
                                  f"{int(s.min())}..{int(s.max())}, replications {int(r.min())}..{int(r.max())}); "
                                  f"the limit is {limit:.1f} s ({rule}): the simulation hangs",
                                  system=int(s[0]), replication=int(r[0]), rank=self._worker_rank(w))
            self.last_error = str(exc)
            self._hung.add(w)
            raise exc

    # ------------------------------------------------------------------ asynchronous use (PASS)
    def async_capacity(self) -> int:
        """How many more asynchronous jobs the workers can take now."""
        return sum(max(0, self.depth - o) for o in self._outstanding)

    def submit(self, tag: int, systems: np.ndarray, reps: np.ndarray) -> None:
        """Queue a simulation job on the least-loaded worker (asynchronous API)."""
        self._check_open()
        w = int(np.argmin(self._outstanding))
        job = Job(int(tag), "sim", systems=np.ascontiguousarray(systems, dtype=np.int64),
                  reps=np.ascontiguousarray(reps, dtype=np.int64))
        self._async_running[(w, job.index)] = job
        self._outstanding[w] += 1
        self._dispatch(w, job)

    def begin_async(self) -> None:
        self._check_open()
        self._outstanding = [0] * self.n_remote
        self._inflight = [deque() for _ in range(self.n_remote)]
        self._async_running: dict[tuple[int, int], Job] = {}

    def wait_any(self) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Block until at least one submitted job finishes: [(tag, systems, reps, values)]."""
        out = []
        for w, reply in self._poll(block=True):
            job = self._async_running.pop((w, reply[-1]))
            self._outstanding[w] -= 1
            self._replied(w)
            if reply[0] == "err":
                raise self._fail(reply, self._worker_rank(w))
            self._busy[w] += reply[2]
            self._jobs_done[w] += 1
            self._update_cost(job.size, reply[2])
            out.append((job.index, job.systems, job.reps, reply[1]))
        return out

    @property
    def supports_async(self) -> bool:
        return self.n_remote > 0

    # ------------------------------------------------------------------ transport (subclasses)
    def _bind_workers(self, payload: bytes) -> None:
        raise NotImplementedError

    def _send(self, worker: int, job: Job) -> None:
        raise NotImplementedError

    def _poll(self, block: bool) -> list[tuple[int, tuple]]:
        raise NotImplementedError

    def _worker_rank(self, worker: int) -> int:
        raise NotImplementedError

    def _shutdown(self, failed: bool) -> None:
        raise NotImplementedError
