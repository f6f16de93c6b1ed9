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
    "stream_key",
    "system_stream_key",
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
def stream_key(seed_key: np.uint64, stream_id: np.int64) -> np.uint64:
    """Key of stream ``stream_id`` (a system, or COMMON_STREAM under CRN)."""
    return _mix64(seed_key ^ _mix64(np.uint64(stream_id + 2) * _GAMMA))


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marsaglia & Tsang (2000) 128-layer ziggurat tables for the normal density."""
    m1 = 2147483648.0
    dn = 3.442619855899
    tn = dn
    vn = 9.91256303526217e-3
    kn = np.zeros(128, dtype=np.int64)
    wn = np.zeros(128)
    fn = np.zeros(128)
    q = vn / np.exp(-0.5 * dn * dn)
    kn[0] = int((dn / q) * m1)
    kn[1] = 0
    wn[0] = q / m1
    wn[127] = dn / m1
    fn[0] = 1.0
    fn[127] = np.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = np.sqrt(-2.0 * np.log(vn / dn + np.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = np.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


_ZKN, _ZWN, _ZFN = _ziggurat_tables()
_ZR = 3.442619855899
_S32 = np.uint64(32)


@numba.njit(inline="always", cache=True)
def _raw_at(state: np.uint64, pos: np.int64) -> np.uint64:
    return _mix64(state + np.uint64(pos + 1) * _GAMMA)


@numba.njit(inline="always", cache=True)
def _unit(z: np.uint64) -> float:
    return (np.float64(z >> _S11) + 0.5) * _INV53


@numba.njit(cache=True)
def normal_at(state: np.uint64, j: np.int64) -> float:
    """j-th standard normal of a replication state.

    Ziggurat method (Marsaglia & Tsang 2000, 128 layers); normal j reads the
    raw values at positions 2**40 + 256 j + t, t = 0, 1, ... (about 1.03 on
    average), disjoint from the uniforms of :func:`uniform_at` for j < 2**40.
    """
    base = (np.int64(1) << 40) + np.int64(256) * j
    t = 0
    while True:
        z = _raw_at(state, base + t)
        t += 1
        hz = np.int64(np.int32(np.uint32(z >> _S32)))
        iz = np.int64(z & np.uint64(127))
        if abs(hz) < _ZKN[iz]:
            return hz * _ZWN[iz]
        if iz == 0:  # tail beyond r: Marsaglia's exponential rejection
            while True:
                x = -np.log(_unit(_raw_at(state, base + t))) / _ZR
                y = -np.log(_unit(_raw_at(state, base + t + 1)))
                t += 2
                if y + y >= x * x:
                    break
            return _ZR + x if hz > 0 else -_ZR - x
        x = hz * _ZWN[iz]
        u = _unit(_raw_at(state, base + t))
        t += 1
        if _ZFN[iz] + u * (_ZFN[iz - 1] - _ZFN[iz]) < np.exp(-0.5 * x * x):
            return x


@numba.njit(inline="always", cache=True)
def exponential_at(state: np.uint64, j: np.int64) -> float:
    """j-th standard exponential of a replication state (inverse transform)."""
    return -np.log(uniform_at(state, j))


@numba.njit(inline="always", cache=True)
def system_stream_key(seed_key: np.uint64, system: np.int64, crn: bool) -> np.uint64:
    """Key of the stream system ``system`` reads (the common one under CRN)."""
    return stream_key(seed_key, COMMON_STREAM if crn else system)


@numba.njit(cache=True)
def _stream_keys(seed_key: np.uint64, ids: np.ndarray) -> np.ndarray:
    out = np.empty(ids.shape[0], dtype=np.uint64)
    for n in range(ids.shape[0]):
        out[n] = stream_key(seed_key, ids[n])
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
