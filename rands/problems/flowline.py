"""Three-station flow line, throughput maximisation (TPMax).

Decision: integer service rates s1 + s2 + s3 = L and buffer sizes b2 + b3 = L,
all parts >= 1, giving (L-1)^2 (L-2)/2 alternatives (3,249 at L = 20, 57,624 at
L = 50, the PyPRS TPMax-57,624 instance). Station 1 has an infinite supply of
jobs; service times at station s are exponential with rate s_s; a job that
finishes service stays on its server until there is room downstream
("blocking after service"). One replication starts empty, lets ``warmup`` jobs
leave station 3 and returns ``jobs / (time for the next jobs departures)``:
with the defaults, 50 / (D(2050, 3) - D(2000, 3)).

Buffer convention (``buffer_convention``):

* ``"capacity"`` (default, as PyPRS's TPMax simulation): b_s is the total
  capacity of station s *including its server*; job n may leave station s-1
  only once job n - b_s has left station s.
* ``"waiting"`` (Pichitlamken et al. 2006; SimOpt TPMax): b_s counts the
  waiting spaces in front of station s; job n may leave station s-1 once job
  n - b_s - 1 has left station s. The same (b2, b3) then means one more place
  per station, so the optima shift by one.

Recursion (job n = 1, 2, ...; D(n, 0) = 0 with an infinite supply; D(0, s) = 0;
S(n, s) the service time; B_s = b_s for "capacity", b_s + 1 for "waiting")::

    C(n, s) = max(D(n, s-1), D(n-1, s)) + S(n, s)
    D(n, s) = max(C(n, s), D(n - B_{s+1}, s+1))     s = 1, 2  (the second term only when n > B_{s+1})
    D(n, 3) = C(n, 3)

Alternatives are numbered in PyPRS's order (so index i here is line i+1 of
PyPRS's ``TPMax_57624.txt`` at L = 50)::

    for s1 in 1..L-2: for s2 in 1..L-1-s1: (s3 = L-s1-s2)
        for b2 in 1..L-1: (b3 = L-b2)

Randomness: replication r of system i reads the stream state
``stream_state(key_i, r)``; the service time of job m (0-based) at station s
(0, 1, 2) is ``exponential_at(state, s * (warmup + jobs) + m) / rate_s``.
Under CRN every system reads the same exponentials at the same (r, j), so the
outputs of different systems are positively correlated (faster stations are
faster on the same draws). A block is processed grouped by (key, replication)
so under CRN the exponentials of a replication are generated once and reused
by every system of the block.

True means: for L = 20 with the default warmup, jobs and convention, a
recorded Monte Carlo estimate ships in ``rands/data/flowline_L20.npz``
(``true_means``, with standard errors in ``true_means_se``; see
``studies/flowline_truth/README.md``). It is an *estimate*, not exact. No
truth is recorded for other settings (``true_means`` is None).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numba
import numpy as np

from ..errors import ParameterError, check_int
from ..streams import Streams, exponential_at, stream_state
from ..params import Options, ints
from .base import Problem, check_block

__all__ = ["FlowLine", "flowline_alternatives", "line_departures"]

_CONVENTIONS = ("capacity", "waiting")
_DATA = Path(__file__).resolve().parent.parent / "data"
_TRUTH_FILE = "flowline_L20.npz"
_LABEL = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\|\s*(\d+)\s*,\s*(\d+)\s*\)$")


def flowline_count(L: int) -> int:
    """Number of alternatives, (L-1)^2 (L-2) / 2."""
    return (L - 1) * (L - 1) * (L - 2) // 2


def flowline_alternatives(L: int) -> tuple[np.ndarray, np.ndarray]:
    """(rates, buffers): int64 arrays of shape (k, 3) and (k, 2) in PyPRS order."""
    s1, s2 = np.meshgrid(np.arange(1, L - 1), np.arange(1, L - 1), indexing="ij")
    ok = s1 + s2 <= L - 1
    s1, s2 = s1[ok], s2[ok]                       # row-major: s1 outer, s2 inner
    rates3 = np.stack([s1, s2, L - s1 - s2], axis=1)
    b2 = np.arange(1, L)
    rates = np.repeat(rates3, L - 1, axis=0)
    buf2 = np.tile(b2, rates3.shape[0])
    buffers = np.stack([buf2, L - buf2], axis=1)
    return rates.astype(np.int64), buffers.astype(np.int64)


@numba.njit(cache=True)
def _line(svc1, svc2, svc3, a1, a2, a3, B2, B3, d1, d2, d3):
    """Departure times of a three-station line with blocking after service.

    svc* are unit-rate service draws of each job, a* the multipliers 1/rate;
    B2, B3 the blocking lags (job n leaves station s-1 after job n - B_s left s).
    Fills d1, d2, d3 (0-based jobs).
    """
    n_jobs = d1.shape[0]
    p1 = 0.0
    p2 = 0.0
    p3 = 0.0
    for m in range(n_jobs):
        c = p1 + a1 * svc1[m]
        if m >= B2:
            q = d2[m - B2]
            if q > c:
                c = q
        d1[m] = c
        p1 = c
        c = (p2 if p2 > p1 else p1) + a2 * svc2[m]
        if m >= B3:
            q = d3[m - B3]
            if q > c:
                c = q
        d2[m] = c
        p2 = c
        c = (p3 if p3 > p2 else p2) + a3 * svc3[m]
        d3[m] = c
        p3 = c


@numba.njit(cache=True)
def line_departures(service: np.ndarray, b2: int, b3: int, waiting: bool = False) -> np.ndarray:
    """Departure times D (3, n_jobs) for given service times (3, n_jobs).

    The reference recursion of the module docstring on explicit service times
    (rates already applied). ``waiting`` selects the published buffer
    convention; default is PyPRS's total-capacity convention.
    """
    n_jobs = service.shape[1]
    off = 1 if waiting else 0
    d = np.empty((3, n_jobs))
    _line(service[0], service[1], service[2], 1.0, 1.0, 1.0, b2 + off, b3 + off, d[0], d[1], d[2])
    return d


@numba.njit(cache=True)
def _flowline_kernel(keys, systems, reps, order, inv_rates, lags, warmup, jobs, out):
    n_jobs = warmup + jobs
    svc = np.empty((3, n_jobs))
    d1 = np.empty(n_jobs)
    d2 = np.empty(n_jobs)
    d3 = np.empty(n_jobs)
    have = False
    last_key = np.uint64(0)
    last_rep = np.int64(-1)
    for t in range(order.shape[0]):
        n = order[t]
        key = keys[n]
        rep = reps[n]
        if not (have and key == last_key and rep == last_rep):
            st = stream_state(key, rep)
            for s in range(3):
                base = s * n_jobs
                for m in range(n_jobs):
                    svc[s, m] = exponential_at(st, base + m)
            have = True
            last_key = key
            last_rep = rep
        i = systems[n]
        _line(svc[0], svc[1], svc[2], inv_rates[i, 0], inv_rates[i, 1], inv_rates[i, 2],
              lags[i, 0], lags[i, 1], d1, d2, d3)
        t0 = d3[warmup - 1] if warmup > 0 else 0.0
        out[n] = jobs / (d3[n_jobs - 1] - t0)
    return out


class FlowLine(Problem):
    """Three-station flow line throughput maximisation (TPMax), k = (L-1)^2 (L-2)/2.

    Parameters
    ----------
    L : total service rate and total buffer (>= 3).
    warmup : jobs that leave station 3 before measurement starts (>= 0).
    jobs : jobs whose departures are measured (>= 1); output = jobs / elapsed time.
    buffer_convention : "capacity" (PyPRS, b includes the server; default) or
        "waiting" (published, b = waiting spaces).
    """

    name = "flowline"
    #: L <= 500 keeps the (L-1)^2 (L-2)/2 alternatives (6.2e7 at L = 500) in memory; a sample
    #: allocates 6 (warmup + jobs) doubles, so each is capped at 10^7
    _parameter_constraints = {"L": ints(3, 500), "warmup": ints(0, 10**7), "jobs": ints(1, 10**7),
                              "buffer_convention": [Options(_CONVENTIONS)]}

    def __init__(self, L: int = 20, warmup: int = 2000, jobs: int = 50,
                 buffer_convention: str = "capacity"):
        self.L = check_int("L", L, low=3)
        self.warmup = check_int("warmup", warmup, low=0)
        self.jobs = check_int("jobs", jobs, low=1)
        if buffer_convention not in _CONVENTIONS:
            raise ParameterError(f"buffer_convention must be one of {_CONVENTIONS}, got {buffer_convention!r}")
        self.buffer_convention = buffer_convention
        self.rates, self.buffers = flowline_alternatives(self.L)
        self.k = int(self.rates.shape[0])
        self._inv_rates = np.ascontiguousarray(1.0 / self.rates)
        off = 1 if buffer_convention == "waiting" else 0
        self._lags = np.ascontiguousarray(self.buffers + off)

    # ----------------------------------------------------------------- simulation
    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        systems, reps = check_block(systems, reps, self.k)
        out = np.empty(systems.shape[0], dtype=np.float64)
        keys = streams.keys(systems)
        if streams.crn:   # group by replication: one set of exponentials per replication
            order = np.argsort(reps, kind="stable").astype(np.int64)
        else:
            order = np.arange(systems.shape[0], dtype=np.int64)
        return _flowline_kernel(keys, systems, reps, order, self._inv_rates, self._lags,
                                self.warmup, self.jobs, out)

    # ----------------------------------------------------------------- truth
    @property
    def has_truth(self) -> bool:
        return (self.L == 20 and self.warmup == 2000 and self.jobs == 50
                and self.buffer_convention == "capacity")

    @property
    def true_means(self) -> np.ndarray | None:  # type: ignore[override]
        """Recorded Monte Carlo estimate (L = 20 defaults only), else None.

        Not exact: a CRN Monte Carlo estimate from 25,000 replications per
        alternative; each entry carries a standard error, ``true_means_se``
        (at most 0.0047, about 0.0046 near the top; see
        studies/flowline_truth/README.md).
        """
        if not self.has_truth:
            return None
        return _load_truth()["means"]

    @property
    def true_means_se(self) -> np.ndarray | None:
        if not self.has_truth:
            return None
        return _load_truth()["se"]

    # ----------------------------------------------------------------- labels
    def label(self, system: int) -> str:
        i = int(system)
        if not 0 <= i < self.k:
            raise ParameterError(f"system must be in [0, k={self.k}), got {system!r}")
        s1, s2, s3 = self.rates[i]
        b2, b3 = self.buffers[i]
        return f"({s1},{s2},{s3}|{b2},{b3})"

    def index_of(self, label_or_rates, buffers=None) -> int:
        """Index of "(s1,s2,s3|b2,b3)" or of ``index_of((s1, s2, s3), (b2, b3))``."""
        if buffers is None:
            m = _LABEL.match(str(label_or_rates))
            if m is None:
                raise ParameterError(f"label must look like '(s1,s2,s3|b2,b3)', got {label_or_rates!r}")
            s1, s2, s3, b2, b3 = (int(g) for g in m.groups())
        else:
            s1, s2, s3 = (int(v) for v in label_or_rates)
            b2, b3 = (int(v) for v in buffers)
        L = self.L
        if min(s1, s2, s3, b2, b3) < 1 or s1 + s2 + s3 != L or b2 + b3 != L:
            raise ParameterError(f"need positive integers with s1+s2+s3 = L = {L} and b2+b3 = {L}, "
                                 f"got ({s1},{s2},{s3}|{b2},{b3})")
        # rate triples before s1: sum_{a<s1} (L-1-a); then s2-1 inside the s1 block
        before = (s1 - 1) * (L - 1) - (s1 - 1) * s1 // 2
        return (before + s2 - 1) * (L - 1) + (b2 - 1)

    def params(self):
        return {"L": self.L, "warmup": self.warmup, "jobs": self.jobs,
                "buffer_convention": self.buffer_convention}


@lru_cache(maxsize=1)
def _load_truth() -> dict:
    path = _DATA / _TRUTH_FILE
    if not path.exists():
        raise FileNotFoundError(f"FlowLine truth table {path} is missing; run studies/flowline_truth/run.py")
    with np.load(path) as z:
        means = np.array(z["means"], dtype=np.float64)
        se = np.array(z["se"], dtype=np.float64)
    means.setflags(write=False)
    se.setflags(write=False)
    return {"means": means, "se": se}
