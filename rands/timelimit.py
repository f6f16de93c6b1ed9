"""The hang guard inside one process: a time limit on every ``problem.simulate`` call.

``sim_timeout`` is the seconds one ``simulate`` call may run: one block on the serial
backend, one chunk of a block on a worker (chunks are never larger than the block, so a
limit that suits a serial run suits every backend). It is off by default. :func:`limit`
sets it for this process (``rands.select(..., sim_timeout=...)``, ``[run] sim_timeout``;
worker processes and MPI ranks set it from the executor's options), and :func:`simulate`
runs a call under it with ``SIGALRM``: a call over its limit raises
:class:`rands.errors.SimulationError` naming the system and replication that hang (a
block's pairs are then simulated one at a time, each under max(sim_timeout, 5 s), for at
most 10 s; else the block's first pair and its ranges are named). A call that raises is
reported the same way, with the pair that raises.

The alarm only interrupts Python code in the main thread: a simulation stuck in
compiled code that never returns to Python (or running in another thread) is not
stopped here; on the processes and MPI backends the coordinator's heartbeat
(``rands.parallel._pool``) catches it and kills the worker.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Iterator

import numpy as np

from .errors import SimulationError

_LIMIT: float | None = None
#: seconds one sample alone may take while the pair that hangs in a block is looked for
PROBE_S = 5.0


class _Expired(BaseException):
    """Raised by the alarm inside a simulation (a BaseException: user code rarely catches it)."""


def get_limit() -> float | None:
    """This process's ``sim_timeout`` (seconds per call), or None."""
    return _LIMIT


def set_limit(seconds: float | None) -> None:
    """Set this process's ``sim_timeout`` (None: off)."""
    global _LIMIT
    _LIMIT = None if seconds is None else float(seconds)


@contextlib.contextmanager
def limit(seconds: float | None) -> Iterator[None]:
    """``sim_timeout`` for the calls made inside the ``with`` (None leaves the current one)."""
    previous = _LIMIT
    if seconds is not None:
        set_limit(seconds)
    try:
        yield
    finally:
        set_limit(previous)


def simulate(problem, systems: np.ndarray, reps: np.ndarray, streams):
    """``problem.simulate(systems, reps, streams)`` under this process's time limit; an
    exception it raises comes back as a SimulationError naming the pair that raises."""
    try:
        return _timed(problem, systems, reps, streams)
    except SimulationError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported with its location, chained
        from .jobs import locate_failure
        s, r = np.asarray(systems).ravel(), np.asarray(reps).ravel()
        where = locate_failure(problem, streams, s, r) if s.size else None
        if where is None:
            where = (int(s[0]) if s.size else -1, int(r[0]) if r.size else -1,
                     f"simulation raised {type(exc).__name__}: {exc}")
        raise SimulationError(where[2], system=where[0], replication=where[1]) from exc


def _timed(problem, systems: np.ndarray, reps: np.ndarray, streams):
    if _LIMIT is None or threading.current_thread() is not threading.main_thread():
        return problem.simulate(systems, reps, streams)
    m = max(1, int(np.shape(systems)[0]))
    seconds = min(_LIMIT, 1e9)
    t0 = time.monotonic()

    old_handler = signal.signal(signal.SIGALRM, signal.SIG_IGN)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, 0)     # an enclosing alarm: kept and re-armed
    outer_first = bool(outer) and outer < seconds
    fired: list[bool] = []

    def expired(signum, frame) -> None:  # noqa: ARG001
        if outer_first:                  # the enclosing alarm's time came first: its handler runs
            fired.append(True)
            signal.signal(signal.SIGALRM, old_handler)
            if callable(old_handler):
                old_handler(signum, frame)
            return
        raise _Expired

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, outer if outer_first else seconds)
    try:
        return problem.simulate(systems, reps, streams)
    except _Expired:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if outer and not fired:         # the enclosing alarm keeps its deadline
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - t0), 1e-3))
    s, r = np.asarray(systems).ravel(), np.asarray(reps).ravel()
    if m > 1:               # name the pair that hangs: each alone under the limit
        found = _locate(problem, s, r, streams)
        if found is not None:
            raise _timeout_error(f"simulation ran longer than sim_timeout = {_LIMIT:g} s per call "
                                 f"(found in a block of {m} samples)", *found)
    where = "" if m == 1 else (f" (a block of {m} samples, systems {int(s.min())}..{int(s.max())}, "
                               f"replications {int(r.min())}..{int(r.max())})")
    raise _timeout_error(f"simulation ran longer than sim_timeout = {_LIMIT:g} s per call{where}",
                         int(s[0]), int(r[0]))


def _timeout_error(message: str, system: int, replication: int) -> SimulationError:
    exc = SimulationError(f"{message}; it hangs or needs a larger sim_timeout", system=system,
                          replication=replication)
    exc.timed_out = True
    return exc


def _locate(problem, s: np.ndarray, r: np.ndarray, streams,
            budget_s: float = 2 * 5.0) -> tuple[int, int] | None:
    """The first pair of a block that times out alone, each probed under max(sim_timeout,
    ``PROBE_S``) (searched for at most ``budget_s`` s)."""
    t0 = time.monotonic()
    probe = max(_LIMIT or 0.0, PROBE_S)     # one sample's call also pays one-off costs (a JIT compile)
    for n in range(s.shape[0]):
        if time.monotonic() - t0 > budget_s:
            return None
        try:
            with limit(probe):
                simulate(problem, s[n:n + 1], r[n:n + 1], streams)
        except SimulationError as exc:
            if getattr(exc, "timed_out", False):
                return exc.system, exc.replication
        except Exception:  # noqa: BLE001 - another failure: not the hang looked for
            pass
    return None


__all__ = ["get_limit", "set_limit", "limit", "simulate"]
