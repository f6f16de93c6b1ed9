"""Few-shot correlation clustering: spherical k-means on standardized pilot vectors.

Under common random numbers the n0 pilot outputs of system i form a vector
x_i in R^n0. Centring and scaling each row to unit norm (:func:`standardize`)
makes the dot product of two rows their sample Pearson correlation, so
clustering by cosine similarity groups systems whose outputs move together.
Spherical k-means (Dhillon & Modha 2001) maximises sum_i x_i . c_{l(i)} over
unit centroids c_1..c_m: each Lloyd step costs O(k m n0) time, the state is the
(k, n0) pilot, k labels and an (m, n0) centroid block: O(k n0) memory, never a
k x k correlation matrix.

Decisions (ours; the P3C paper's AC+ algorithm is not public):

- **Seeding**: greedy k-means++ (Arthur & Vassilvitskii 2007; the greedy
  variant of scikit-learn): each new centre is the best of ``n_candidates``
  D^2-sampled candidates by the potential it leaves. Plain k-means++ fell into
  merged/split optima in 30% of runs at p = 16 in our findings note; the greedy
  variant with several restarts (``n_init``, best objective kept) removes them.
- **Small n0**: rows with zero pilot variance stay zero vectors (similarity 0
  to every centre, assigned to cluster 0's rule of lowest index); an emptied
  cluster is re-seeded at the row farthest from its centre; restarts pick the
  best objective.
- **Determinism across ranks**: every sum over systems is formed per fixed-size
  chunk of ``chunk`` consecutive systems (boundaries at multiples of ``chunk``,
  independent of the rank count); the per-chunk partials are gathered and added
  in chunk order with the same numpy call on every rank. The serial path uses
  the same chunks, so the serial labels, and the labels from 1, 2 or 3 MPI ranks
  (``rands.parallel.clustering``), are bit-identical for the same seed.

The ``comm`` argument is any object with ``rank``, ``size`` and
``allgather(obj) -> list`` (mpi4py's communicator has them); the default is a
one-rank stand-in, so this module never imports mpi4py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from ..errors import ParameterError, check_int

__all__ = ["standardize", "spherical_kmeans", "ClusteringResult", "SerialComm", "shard_range",
           "DEFAULT_CHUNK"]

#: systems per chunk of the deterministic reductions
DEFAULT_CHUNK = 4096


class SerialComm:
    """A one-rank communicator (the serial path of the sharded algorithm)."""

    rank = 0
    size = 1

    def allgather(self, obj: Any) -> list:
        return [obj]


def shard_range(k: int, rank: int, size: int, chunk: int = DEFAULT_CHUNK) -> tuple[int, int]:
    """Rows [lo, hi) of the k systems owned by ``rank`` of ``size``: whole chunks, contiguous."""
    n_chunks = -(-k // chunk)
    c_lo = (rank * n_chunks) // size
    c_hi = ((rank + 1) * n_chunks) // size
    return min(c_lo * chunk, k), min(c_hi * chunk, k)


@dataclass
class ClusteringResult:
    """Labels (this rank's rows, all rows when serial), unit centroids (m, n0), objective.

    objective : sum over systems of 1 - cos(x_i, c_{label(i)}) (lower is better).
    sizes : global cluster sizes. n_iter : Lloyd iterations of the kept restart.
    """

    labels: np.ndarray
    centroids: np.ndarray
    objective: float
    sizes: np.ndarray
    n_iter: int
    inits: list = field(default_factory=list)

    def groups(self) -> list[np.ndarray]:
        """System indices of each cluster (serial results only)."""
        order = np.argsort(self.labels, kind="stable")
        bounds = np.cumsum(np.bincount(self.labels, minlength=self.centroids.shape[0]))
        return np.split(order, bounds[:-1])


# ---------------------------------------------------------------- standardize
@numba.njit(cache=True)
def _standardize_kernel(x, out):
    k, n = x.shape
    for i in range(k):
        m = 0.0
        for j in range(n):
            m += x[i, j]
        m /= n
        ss = 0.0
        for j in range(n):
            d = x[i, j] - m
            out[i, j] = d
            ss += d * d
        if ss > 0.0:
            inv = 1.0 / np.sqrt(ss)
            for j in range(n):
                out[i, j] *= inv
        else:
            for j in range(n):
                out[i, j] = 0.0
    return out


def standardize(pilot: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (dot product = Pearson correlation).

    Rows with zero variance become zero vectors. Needs at least 3 columns
    (2 samples leave one direction: every correlation is +-1).
    """
    x = np.ascontiguousarray(pilot, dtype=np.float64)
    if x.ndim != 2:
        raise ParameterError(f"pilot must be a 2-D (systems, samples) array, got shape {x.shape}")
    if x.shape[1] < 3:
        raise ParameterError(f"pilot needs >= 3 samples per system to estimate correlations, got {x.shape[1]}")
    if not np.all(np.isfinite(x)):
        raise ParameterError("pilot contains non-finite values")
    return _standardize_kernel(x, np.empty_like(x))


# ---------------------------------------------------------------- kernels (chunked)
@numba.njit(cache=True)
def _chunk_bounds(lo, hi, chunk):
    first = lo // chunk
    last = (hi - 1) // chunk if hi > lo else first - 1
    nc = last - first + 1
    b = np.empty(nc + 1, dtype=np.int64)
    for c in range(nc):
        b[c] = max(lo, (first + c) * chunk) - lo
    b[nc] = hi - lo
    return b


@numba.njit(inline="always", cache=True)
def _sq_dist(x, i, c):
    """Squared distance 2 - 2 x_i.c between unit vectors (clipped at 0)."""
    dot = 0.0
    for j in range(x.shape[1]):
        dot += x[i, j] * c[j]
    v = 2.0 - 2.0 * dot
    if v < 0.0:
        v = 0.0
    return v


@numba.njit(cache=True)
def _init_d2(x, c, bounds, d2, sums):
    """d2[i] = 2 - 2 x_i.c (squared distance to the first centre); per-chunk sums."""
    for ch in range(bounds.shape[0] - 1):
        s = 0.0
        for i in range(bounds[ch], bounds[ch + 1]):
            v = _sq_dist(x, i, c)
            d2[i] = v
            s += v
        sums[ch] = s


@numba.njit(cache=True)
def _potential(x, cands, bounds, d2, out):
    """out[q, ch] = sum over chunk ch of min(d2, dist^2 to candidate q)."""
    for q in range(cands.shape[0]):
        for ch in range(bounds.shape[0] - 1):
            s = 0.0
            for i in range(bounds[ch], bounds[ch + 1]):
                v = _sq_dist(x, i, cands[q])
                if v < d2[i]:
                    s += v
                else:
                    s += d2[i]
            out[q, ch] = s


@numba.njit(cache=True)
def _update_d2(x, c, bounds, d2, sums):
    for ch in range(bounds.shape[0] - 1):
        s = 0.0
        for i in range(bounds[ch], bounds[ch + 1]):
            v = _sq_dist(x, i, c)
            if v < d2[i]:
                d2[i] = v
            s += d2[i]
        sums[ch] = s


@numba.njit(cache=True)
def _locate(d2, start, end, target):
    """First index in [start, end) where the running sum of d2 exceeds target (last positive if none)."""
    s = 0.0
    last = -1
    for i in range(start, end):
        if d2[i] > 0.0:
            last = i
        s += d2[i]
        if s > target and d2[i] > 0.0:
            return i
    return last


@numba.njit(cache=True)
def _assign(x, cent, bounds, labels, sums, counts, obj, changed, far_d, far_i):
    """Assign rows to the most similar centroid; per-chunk centroid sums, counts,
    objective, label changes and the farthest row (for re-seeding)."""
    n = x.shape[1]
    m = cent.shape[0]
    for ch in range(bounds.shape[0] - 1):
        o = 0.0
        chg = 0
        fd = -1.0
        fi = -1
        for i in range(bounds[ch], bounds[ch + 1]):
            best = -np.inf
            bl = 0
            for l in range(m):
                dot = 0.0
                for j in range(n):
                    dot += x[i, j] * cent[l, j]
                if dot > best:
                    best = dot
                    bl = l
            if labels[i] != bl:
                chg += 1
                labels[i] = bl
            counts[ch, bl] += 1
            for j in range(n):
                sums[ch, bl, j] += x[i, j]
            d = 1.0 - best
            o += d
            if d > fd:
                fd = d
                fi = i
        obj[ch] = o
        changed[ch] = chg
        far_d[ch] = fd
        far_i[ch] = fi


# ---------------------------------------------------------------- driver
class _Sharded:
    """This rank's rows [lo, hi) of the k standardized pilot vectors, and the gather helpers."""

    def __init__(self, x: np.ndarray, lo: int, k: int, chunk: int, comm) -> None:
        self.x, self.lo, self.hi, self.k, self.chunk, self.comm = x, lo, lo + x.shape[0], k, chunk, comm
        self.bounds = _chunk_bounds(np.int64(lo), np.int64(self.hi), np.int64(chunk))
        self.nc = self.bounds.shape[0] - 1

    def cat(self, local: np.ndarray) -> np.ndarray:
        """Per-chunk arrays (first axis = this rank's chunks) of all ranks, in chunk order."""
        parts = self.comm.allgather(local)
        parts = [p for p in parts if p.shape[0] > 0]
        return np.concatenate(parts, axis=0) if parts else local

    def row(self, g: int) -> np.ndarray:
        """Global row g, fetched from the rank that owns it."""
        mine = self.x[g - self.lo].copy() if self.lo <= g < self.hi else None
        got = [r for r in self.comm.allgather(mine) if r is not None]
        return got[0]


def _seed_greedy_pp(sh: _Sharded, m: int, n_cand: int, rng: np.random.Generator) -> np.ndarray:
    n = sh.x.shape[1]
    cent = np.empty((m, n))
    cent[0] = sh.row(int(rng.integers(sh.k)))
    d2 = np.empty(sh.x.shape[0])
    sums = np.empty(sh.nc)
    _init_d2(sh.x, cent[0], sh.bounds, d2, sums)
    for c in range(1, m):
        chunk_sums = sh.cat(sums)
        cum = np.cumsum(chunk_sums)
        total = float(cum[-1])
        if total <= 0.0:   # every row sits on a centre: fill with uniform picks
            cent[c] = sh.row(int(rng.integers(sh.k)))
            _update_d2(sh.x, cent[c], sh.bounds, d2, sums)
            continue
        targets = rng.random(n_cand) * total
        ch_glob = np.minimum(np.searchsorted(cum, targets, side="right"), cum.shape[0] - 1)
        first_chunk = sh.lo // sh.chunk
        idx = np.full(n_cand, -1, dtype=np.int64)
        for q in range(n_cand):
            ch = int(ch_glob[q]) - first_chunk
            if 0 <= ch < sh.nc:
                before = float(cum[ch_glob[q] - 1]) if ch_glob[q] > 0 else 0.0
                loc = _locate(d2, sh.bounds[ch], sh.bounds[ch + 1], targets[q] - before)
                idx[q] = -1 if loc < 0 else loc + sh.lo
        idx = np.max(np.stack(sh.comm.allgather(idx)), axis=0)
        # a chunk whose sum was positive has a positive row, so idx >= 0; guard anyway
        idx = np.where(idx < 0, int(rng.integers(sh.k)), idx)
        cands = np.stack([sh.row(int(g)) for g in idx])
        pot = np.empty((n_cand, sh.nc))
        _potential(sh.x, cands, sh.bounds, d2, pot)
        allpot = sh.cat(pot.T.copy())   # (chunks, n_cand) in chunk order
        best = int(np.argmin(np.sum(allpot, axis=0)))
        cent[c] = cands[best]
        _update_d2(sh.x, cent[c], sh.bounds, d2, sums)
    return cent


def _lloyd(sh: _Sharded, cent: np.ndarray, max_iter: int, max_changed: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, int]:
    m, n = cent.shape
    labels = np.full(sh.x.shape[0], -1, dtype=np.int64)
    it = 0
    obj = np.inf
    sizes = np.zeros(m, dtype=np.int64)
    while True:
        sums = np.zeros((sh.nc, m, n))
        counts = np.zeros((sh.nc, m), dtype=np.int64)
        objc = np.empty(sh.nc)
        chg = np.empty(sh.nc, dtype=np.int64)
        far_d = np.empty(sh.nc)
        far_i = np.empty(sh.nc, dtype=np.int64)
        _assign(sh.x, cent, sh.bounds, labels, sums, counts, objc, chg, far_d, far_i)
        it += 1
        S = np.sum(sh.cat(sums), axis=0)
        sizes = np.sum(sh.cat(counts), axis=0)
        obj = float(np.sum(sh.cat(objc)))
        changed = int(np.sum(sh.cat(chg)))
        if changed <= max_changed or it >= max_iter:
            break
        norms = np.sqrt(np.sum(S * S, axis=1))
        new = cent.copy()
        ok = norms > 0
        new[ok] = S[ok] / norms[ok, None]
        empty = np.flatnonzero(~ok)
        if empty.size:
            # re-seed emptied clusters at the rows farthest from their centres (deterministic)
            fd = sh.cat(far_d)
            fi = sh.cat(far_i + sh.lo)
            order = np.lexsort((fi, -fd))
            for e, o in zip(empty, order):
                new[e] = sh.row(int(fi[o]))
        cent = new
    return labels, cent, obj, sizes, it


def spherical_kmeans(x: np.ndarray, n_clusters: int, *, seed: int | tuple = 0, n_init: int = 3,
                     n_candidates: int | None = None, max_iter: int = 100, chunk: int = DEFAULT_CHUNK,
                     comm=None, offset: int = 0, k_total: int | None = None,
                     standardized: bool = False, tol: float = 1e-4) -> ClusteringResult:
    """Cluster k pilot vectors into ``n_clusters`` groups by correlation.

    Parameters
    ----------
    x : (k, n0) pilot outputs (or this rank's rows [offset, offset + len) when sharded).
    n_clusters : m, 1 <= m <= k.
    seed : the clustering's own seed (restart r uses SeedSequence((seed..., r))).
    n_init : restarts; the lowest objective is kept (ties: first restart).
    n_candidates : greedy k-means++ candidates per centre (default 2 + floor(ln m)).
    max_iter : Lloyd iterations per restart.
    tol : stop when at most floor(tol * k) labels changed in an iteration (0: until none).
    chunk : systems per reduction chunk (must be the same on every rank).
    comm, offset, k_total : the sharded call (see ``rands.parallel.clustering``).
    standardized : x already holds unit rows from :func:`standardize`.

    Cost: O(n_init (n_candidates + max_iter) k m n0) time, O(k n0) memory.
    """
    comm = SerialComm() if comm is None else comm
    xs = x if standardized else standardize(x)
    k_total = xs.shape[0] if k_total is None else int(k_total)
    m = check_int("n_clusters", n_clusters, low=1, high=k_total)
    n_init = check_int("n_init", n_init, low=1)
    max_iter = check_int("max_iter", max_iter, low=1)
    chunk = check_int("chunk", chunk, low=1)
    if not 0.0 <= float(tol) < 1.0:
        raise ParameterError(f"tol must be in [0, 1), got {tol!r}")
    max_changed = int(np.floor(float(tol) * k_total))
    n_cand = 2 + int(np.log(m)) if n_candidates is None else check_int("n_candidates", n_candidates, low=1)
    base = tuple(seed) if isinstance(seed, (tuple, list)) else (int(seed),)
    if offset % chunk:
        raise ParameterError(f"offset={offset} must be a multiple of chunk={chunk}")
    sh = _Sharded(xs, int(offset), k_total, chunk, comm)
    best = None
    inits = []
    for r in range(n_init):
        rng = np.random.default_rng(np.random.SeedSequence((*base, 0x636C75, r)))
        cent = _seed_greedy_pp(sh, m, n_cand, rng)
        labels, cent, obj, sizes, it = _lloyd(sh, cent, max_iter, max_changed)
        inits.append({"objective": obj, "n_iter": it})
        if best is None or obj < best.objective:
            best = ClusteringResult(labels, cent, obj, sizes, it)
    best.inits = inits
    return best
