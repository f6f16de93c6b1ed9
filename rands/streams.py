"""Random streams keyed by (seed, system, replication).

Every random input of sample (system i, replication r) is a pure function of
(seed, i, r) and of its position j inside that replication; with common random
numbers (CRN) it is a function of (seed, r, j) only, so replication r of every
system sees the same inputs. Nothing depends on which rank drew a block or in
which order, so a synchronous procedure gives bit-identical answers on any
number of ranks.

Generator: a counter-based SplitMix64 construction. A stream key is derived
from the seed (through ``numpy.random.SeedSequence``, never by adding seeds)
and the stream id; replication r selects the SplitMix64 sequence seeded by
``mix(key ^ mix(r))``; value j is the j-th output of that sequence. SplitMix64
(Steele, Lea & Flood 2014) passes BigCrush; each value is random-access
(O(1) to jump to any (r, j)), which lets numba kernels fill whole blocks of
(systems x replications) without building a Generator per sample.

For user functions that expect a ``numpy.random.Generator`` there is
:func:`generator_for`, a Philox generator keyed by (seed, stream, replication)
(tens of microseconds to build: fine for simulations that cost more).
"""
from __future__ import annotations

from typing import Sequence

import numba
import numpy as np

__all__ = [
    "Streams",
    "stream_state",
    "uniform_at",
    "normal_at",
    "exponential_at",
    "generator_for",
    "COMMON_STREAM",
]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_REP_SALT = np.uint64(0xD1B54A32D192ED03)
_TWO_PI = 2.0 * np.pi
_INV53 = 1.0 / 9007199254740992.0  # 2**-53

#: stream id used for every system under CRN
COMMON_STREAM = -1


@numba.njit(inline="always", cache=True)
def _mix64(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(inline="always", cache=True)
def stream_state(key: np.uint64, rep: np.int64) -> np.uint64:
    """State of replication ``rep`` of the stream with key ``key``."""
    return _mix64(key ^ _mix64(np.uint64(rep) * _REP_SALT + _GAMMA))


@numba.njit(inline="always", cache=True)
def uniform_at(state: np.uint64, j: np.int64) -> float:
    """j-th uniform in the open interval (0, 1) of a replication state."""
    z = _mix64(state + np.uint64(j + 1) * _GAMMA)
    return (np.float64(z >> _S11) + 0.5) * _INV53


@numba.njit(inline="always", cache=True)
def normal_at(state: np.uint64, j: np.int64) -> float:
    """j-th standard normal of a replication state (Box-Muller on uniforms 2j, 2j+1)."""
    u1 = uniform_at(state, 2 * j)
    u2 = uniform_at(state, 2 * j + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)


@numba.njit(inline="always", cache=True)
def exponential_at(state: np.uint64, j: np.int64) -> float:
    """j-th standard exponential of a replication state (inverse transform)."""
    return -np.log(uniform_at(state, j))


@numba.njit(cache=True)
def _stream_keys(seed_key: np.uint64, ids: np.ndarray) -> np.ndarray:
    out = np.empty(ids.shape[0], dtype=np.uint64)
    for n in range(ids.shape[0]):
        out[n] = _mix64(seed_key ^ _mix64(np.uint64(ids[n] + 2) * _GAMMA))
    return out


class Streams:
    """The random inputs of one selection: a seed and a CRN switch.

    Parameters
    ----------
    seed : int or sequence of non-negative ints
        Entropy for ``numpy.random.SeedSequence``. A macroreplication m of seed s
        uses ``(s, m)``: seeds are never combined by addition.
    crn : bool
        If True every system reads the common stream, so replication r of all
        systems shares its random inputs.
    """

    def __init__(self, seed: int | Sequence[int], crn: bool = False) -> None:
        self.seed = _check_seed(seed)
        self.crn = bool(crn)
        ss = np.random.SeedSequence(self.seed)
        self.seed_key = np.uint64(ss.generate_state(1, dtype=np.uint64)[0])

    def keys(self, systems: np.ndarray) -> np.ndarray:
        """Stream key of each system (all equal to the common key under CRN)."""
        systems = np.asarray(systems, dtype=np.int64)
        if self.crn:
            ids = np.full(systems.shape[0], COMMON_STREAM, dtype=np.int64)
        else:
            ids = systems
        return _stream_keys(self.seed_key, ids)

    def key_of(self, system: int) -> np.uint64:
        return self.keys(np.array([system]))[0]

    def to_dict(self) -> dict:
        return {"seed": self.seed, "crn": self.crn}

    def __repr__(self) -> str:
        return f"Streams(seed={self.seed!r}, crn={self.crn})"


def generator_for(streams: Streams, system: int, rep: int) -> np.random.Generator:
    """A ``numpy.random.Generator`` for (system, replication) of ``streams``.

    Philox keyed by the replication state; under CRN the same for every system.
    """
    key = streams.key_of(system)
    state = _state_py(key, rep)
    k2 = np.array([state, _mix_py(state)], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=k2))


@numba.njit(cache=True)
def _state_nb(key: np.uint64, rep: np.int64) -> np.uint64:
    return stream_state(key, rep)


@numba.njit(cache=True)
def _mix_nb(z: np.uint64) -> np.uint64:
    return _mix64(z)


def _state_py(key: np.uint64, rep: int) -> np.uint64:
    return _state_nb(np.uint64(key), np.int64(rep))


def _mix_py(z: np.uint64) -> np.uint64:
    return _mix_nb(np.uint64(z))


def _check_seed(seed) -> int | tuple[int, ...]:
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(f"seed must be a non-negative int or a sequence of them, got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        return int(seed)
    try:
        parts = tuple(int(s) for s in seed)
    except TypeError:
        raise ValueError(f"seed must be a non-negative int or a sequence of them, got {seed!r}") from None
    if not parts or any(p < 0 for p in parts):
        raise ValueError(f"seed must be a non-empty sequence of non-negative ints, got {seed!r}")
    return parts
