"""(s, S) inventory problem of Koenig & Law (1985), 1,600 systems, exact means.

The R&S version used in Nelson's R&S masterclass and PySOBA (``Sampler.py``):
system (s, S) with s in 1..40 and S - s in 1..40 (k = 1,600). One replication
is 30 periods, starting with inventory level S. In each period:

1. review: if the level I (the previous period's ending level) is below s,
   order up to S, paying 32 + 3 (S - I); the order arrives at once
   (zero lead time);
2. demand D ~ Poisson(25) is met or backordered;
3. the ending level e = y - D (y the level after ordering) costs
   1 per unit held (e >= 0) or 5 per unit backordered (e < 0).

Output: minus the average cost per period over the 30 periods (we maximise).
In period 1 the level is S > s, so no order is placed then; the ending level of
period 30 triggers no order.

System index i (0-based) = 40 (s - 1) + (S - s - 1), i.e. PySOBA's x = i + 1.

Exact means (``true_means``): the level after ordering takes values in
{s, ..., S}; its distribution pi_t evolves by the Markov kernel
y -> y - d (if y - d >= s) or S (otherwise), and

    E[cost] = sum_{t=1}^{30} pi_t . h + sum_{t=1}^{29} pi_t . o,
    h(y) = E[(y-D)^+] + 5 E[(D-y)^+],
    o(y) = P(D > y-s) (32 + 3 (S - y)) + 3 E[D; D > y-s],

with E[(D-y)^+] = 25 - y + E[(y-D)^+] and E[D; D >= m] = 25 P(D >= m-1), all
finite sums of Poisson probabilities (exact up to rounding).

Randomness: the demand of period t (0-based) of replication r is the Poisson(25)
inverse cdf at ``uniform_at(stream_state(key, r), t)``. Under CRN every system
sees the same demand path in replication r.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numba
import numpy as np
from scipy import stats

from ..errors import ParameterError
from ..streams import Streams, stream_state, uniform_at
from ..params import ints
from .base import Problem, check_block

__all__ = ["Inventory", "inventory_exact_means"]

N_S = 40          # s in 1..40
N_GAP = 40        # S - s in 1..40
PERIODS = 30
LAMBDA = 25.0
FIXED, UNIT, HOLD, BACK = 32.0, 3.0, 1.0, 5.0
_LABEL = re.compile(r"^\(\s*s\s*=\s*(\d+)\s*,\s*S\s*=\s*(\d+)\s*\)$")


def _poisson_cdf_table(lam: float) -> np.ndarray:
    """cdf(0), cdf(1), ... until it rounds to 1.0 in float64 (the last entry is set to 1)."""
    n = int(lam + 40 * np.sqrt(lam) + 40)
    cdf = stats.poisson.cdf(np.arange(n), lam)
    last = int(np.searchsorted(cdf, 1.0 - 2.0**-53))
    cdf = cdf[: last + 1].copy()
    cdf[-1] = 1.0
    return cdf


@numba.njit(cache=True)
def _poisson_inv(u, cdf):
    """Smallest d with cdf[d] >= u (binary search)."""
    lo = 0
    hi = cdf.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if cdf[mid] >= u:
            hi = mid
        else:
            lo = mid + 1
    return lo


@numba.njit(cache=True)
def _inventory_kernel(keys, systems, reps, small_s, big_s, cdf, periods, out):
    for n in range(systems.shape[0]):
        i = systems[n]
        s = small_s[i]
        S = big_s[i]
        st = stream_state(keys[n], reps[n])
        level = S
        cost = 0.0
        for t in range(periods):
            if level < s:
                cost += FIXED + UNIT * (S - level)
                level = S
            level -= _poisson_inv(uniform_at(st, t), cdf)
            if level >= 0:
                cost += HOLD * level
            else:
                cost -= BACK * level
        out[n] = -cost / periods
    return out


def _system_parameters() -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(N_S * N_GAP)
    small = i // N_GAP + 1
    big = small + i % N_GAP + 1
    return small.astype(np.int64), big.astype(np.int64)


def inventory_exact_means(periods: int = PERIODS, lam: float = LAMBDA) -> np.ndarray:
    """Exact expected output (minus average cost per period) of all 1,600 systems."""
    small, big = _system_parameters()
    out = np.empty(small.shape[0])
    dmax = int(lam + 40 * np.sqrt(lam) + 40)
    pmf = stats.poisson.pmf(np.arange(dmax + 1), lam)
    for n, (s, S) in enumerate(zip(small, big)):
        ys = np.arange(s, S + 1)
        # E[(y - D)^+] = sum_{d<=y} (y-d) p(d)
        pos = np.array([np.dot(y - np.arange(y + 1), pmf[: y + 1]) for y in ys])
        neg = lam - ys + pos                                   # E[(D - y)^+]
        h = HOLD * pos + BACK * neg
        m = ys - s                                             # an order follows iff D > m
        p_order = stats.poisson.sf(m, lam)
        d_tail = lam * stats.poisson.sf(m - 1, lam)           # E[D; D >= m+1] = lam P(D >= m)
        o = p_order * (FIXED + UNIT * (S - ys)) + UNIT * d_tail
        # transition matrix over y in {s..S}: y -> y-d if y-d >= s, else S
        size = S - s + 1
        P = np.zeros((size, size))
        for a, y in enumerate(ys):
            d = y - ys[: a + 1]                                # targets s..y need demand y - target
            P[a, : a + 1] = pmf[d]
            P[a, size - 1] += stats.poisson.sf(y - s, lam)     # D > y - s: reorder to S
        pi = np.zeros(size)
        pi[-1] = 1.0
        total = 0.0
        for t in range(periods):
            total += pi @ h
            if t < periods - 1:
                total += pi @ o
                pi = pi @ P
        out[n] = -total / periods
    return out


@lru_cache(maxsize=4)
def _exact_cached(periods: int) -> np.ndarray:
    m = inventory_exact_means(periods)
    m.setflags(write=False)
    return m


class Inventory(Problem):
    """Koenig & Law (s, S) inventory, 1,600 systems; output = -average cost per period.

    ``true_means`` are exact (Markov recursion over the inventory level,
    finite horizon; see the module docstring). ``periods`` (default 30) is the
    horizon of one replication.
    """

    name = "inventory"
    _parameter_constraints = {"periods": ints(1, 10**6)}

    def __init__(self, periods: int = PERIODS):
        if isinstance(periods, bool) or not isinstance(periods, (int, np.integer)) or periods < 1:
            raise ParameterError(f"periods must be an integer >= 1, got {periods!r}")
        self.periods = int(periods)
        self.k = N_S * N_GAP
        self.small_s, self.big_s = _system_parameters()
        self._cdf = _poisson_cdf_table(LAMBDA)

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        systems, reps = check_block(systems, reps, self.k)
        out = np.empty(systems.shape[0], dtype=np.float64)
        return _inventory_kernel(streams.keys(systems), systems, reps, self.small_s, self.big_s,
                                 self._cdf, self.periods, out)

    @property
    def true_means(self) -> np.ndarray:  # type: ignore[override]
        """Exact means (computed once per horizon, about a second)."""
        return _exact_cached(self.periods)

    def label(self, system: int) -> str:
        i = int(system)
        if not 0 <= i < self.k:
            raise ParameterError(f"system must be in [0, k={self.k}), got {system!r}")
        return f"(s={self.small_s[i]},S={self.big_s[i]})"

    def index_of(self, label_or_s, S: int | None = None) -> int:
        """Index of "(s=.,S=.)" or of ``index_of(s, S)``."""
        if S is None:
            m = _LABEL.match(str(label_or_s))
            if m is None:
                raise ParameterError(f"label must look like '(s=20,S=60)', got {label_or_s!r}")
            s, S = int(m.group(1)), int(m.group(2))
        else:
            s, S = int(label_or_s), int(S)
        if not (1 <= s <= N_S and 1 <= S - s <= N_GAP):
            raise ParameterError(f"need 1 <= s <= {N_S} and 1 <= S - s <= {N_GAP}, got s={s}, S={S}")
        return (s - 1) * N_GAP + (S - s - 1)

    def params(self):
        return {"periods": self.periods}
