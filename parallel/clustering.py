"""MPI-sharded few-shot correlation clustering.

Systems are sharded across ranks in whole chunks of ``chunk`` consecutive
systems (``rands.clustering.shard_range``); each rank holds only its rows of
the pilot. Every reduction (D^2 potentials of greedy k-means++, centroid sums,
counts, objective) is formed per chunk, gathered with ``allgather`` and added in
chunk order, so 1, 2 or 3 ranks give bit-identical labels and centroids for the
same seed, equal to the serial :func:`rands.clustering.spherical_kmeans`.
mpi4py is imported only when no communicator is passed.

Run: ``mpiexec -n 3 python -m rands.parallel.clustering --k 20000 --m 16 --n0 10``
(prints a digest of the labels on rank 0).
"""
from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np

from rands.clustering import DEFAULT_CHUNK, shard_range, spherical_kmeans


def _world():
    from mpi4py import MPI  # lazy: rands never needs mpi4py at import
    return MPI.COMM_WORLD


def sharded_kmeans(local_pilot: np.ndarray, k: int, n_clusters: int, *, seed=0, comm=None,
                   chunk: int = DEFAULT_CHUNK, **kw):
    """Cluster the k systems whose rows ``shard_range(k, rank, size, chunk)`` this rank holds.

    Returns the ClusteringResult with this rank's labels (collective call).
    """
    comm = _world() if comm is None else comm
    lo, hi = shard_range(k, comm.rank, comm.size, chunk)
    if local_pilot.shape[0] != hi - lo:
        raise ValueError(f"rank {comm.rank} must hold rows [{lo}, {hi}) ({hi - lo} rows), "
                         f"got {local_pilot.shape[0]}")
    return spherical_kmeans(local_pilot, n_clusters, seed=seed, comm=comm, offset=lo, k_total=k,
                            chunk=chunk, **kw)


def gather_labels(res, comm=None) -> np.ndarray | None:
    """All k labels on rank 0 (None elsewhere)."""
    comm = _world() if comm is None else comm
    parts = comm.gather(res.labels, root=0)
    return np.concatenate(parts) if comm.rank == 0 else None


def cluster_problem(problem, n0: int, n_clusters: int, *, seed=0, stream_seed=0, comm=None,
                    chunk: int = DEFAULT_CHUNK, **kw):
    """Each rank simulates its own rows of an n0-sample CRN pilot and clusters them."""
    from rands.streams import Streams
    comm = _world() if comm is None else comm
    lo, hi = shard_range(problem.k, comm.rank, comm.size, chunk)
    sys = np.arange(lo, hi)
    x = problem.simulate(np.repeat(sys, n0), np.tile(np.arange(n0), hi - lo),
                         Streams(stream_seed, crn=True)).reshape(hi - lo, n0)
    return sharded_kmeans(x, problem.k, n_clusters, seed=seed, comm=comm, chunk=chunk, **kw)


def digest(labels: np.ndarray, centroids: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(centroids, dtype=np.float64).tobytes())
    return h.hexdigest()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=20000)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--n0", type=int, default=10)
    ap.add_argument("--rho", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--out", default=None, help="write labels (.npy) on rank 0")
    a = ap.parse_args(argv)
    import rands
    comm = _world()
    prob = rands.problems.make("clustered", k=a.k, p=a.m, rho=a.rho)
    res = cluster_problem(prob, a.n0, a.m, seed=a.seed, stream_seed=a.seed, comm=comm, chunk=a.chunk)
    labels = gather_labels(res, comm)
    if comm.rank == 0:
        if a.out:
            np.save(a.out, labels)
        print(json.dumps({"ranks": comm.size, "digest": digest(labels, res.centroids),
                          "objective": res.objective, "sizes": res.sizes.tolist()}))


if __name__ == "__main__":
    main()
