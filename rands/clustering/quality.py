"""Clustering quality and load balancing: adjusted Rand index, within-cluster
correlation, and the assignment of clusters to workers by estimated cost."""
from __future__ import annotations

import heapq

import numpy as np

from ..errors import ParameterError

__all__ = ["adjusted_rand_index", "mean_within_correlation", "balance_assignment"]


def _comb2(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float(np.sum(x * (x - 1.0) / 2.0))


def adjusted_rand_index(labels_true, labels_pred) -> float:
    """Hubert & Arabie (1985) adjusted Rand index from the contingency table.

    O(k + a b) for a and b clusters (the table is a x b, never k x k).
    1 for identical partitions, about 0 for independent ones.
    """
    a = np.asarray(labels_true)
    b = np.asarray(labels_pred)
    if a.shape != b.shape or a.ndim != 1:
        raise ParameterError("labels_true and labels_pred must be 1-D arrays of the same length")
    n = a.shape[0]
    if n < 2:
        return 1.0
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    nb = int(bi.max()) + 1
    table = np.bincount(ai * nb + bi, minlength=(int(ai.max()) + 1) * nb)
    index = _comb2(table)
    sa = _comb2(np.bincount(ai))
    sb = _comb2(np.bincount(bi))
    total = n * (n - 1) / 2.0
    expected = sa * sb / total
    maximum = (sa + sb) / 2.0
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


def mean_within_correlation(xs: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Mean pairwise pilot correlation inside each cluster, from standardized rows.

    Uses sum_{i != j} x_i.x_j = ||sum x_i||^2 - sum ||x_i||^2: O(k n0), no pairs.
    nan for clusters with fewer than two members.
    """
    m = int(n_clusters)
    S = np.zeros((m, xs.shape[1]))
    np.add.at(S, labels, xs)
    sq = np.bincount(labels, weights=np.sum(xs * xs, axis=1), minlength=m)
    cnt = np.bincount(labels, minlength=m).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.sum(S * S, axis=1) - sq) / (cnt * (cnt - 1.0))


def balance_assignment(costs, n_workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Longest-processing-time-first assignment of tasks to workers.

    Returns (worker of each task, load of each worker). Deterministic: ties go to
    the lower task index and the lower worker index. Makespan <= 4/3 optimal
    (Graham 1969).
    """
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 1 or np.any(c < 0) or not np.all(np.isfinite(c)):
        raise ParameterError("costs must be a 1-D array of finite non-negative numbers")
    if isinstance(n_workers, bool) or int(n_workers) < 1:
        raise ParameterError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    w = int(n_workers)
    order = np.lexsort((np.arange(c.shape[0]), -c))
    heap = [(0.0, j) for j in range(w)]
    out = np.empty(c.shape[0], dtype=np.int64)
    loads = np.zeros(w)
    for t in order:
        load, j = heapq.heappop(heap)
        out[t] = j
        loads[j] = load + c[t]
        heapq.heappush(heap, (loads[j], j))
    return out, loads


def cluster_sums(xs: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum of the standardized rows of each cluster, (n_clusters, n) (O(k n))."""
    S = np.zeros((int(n_clusters), xs.shape[1]))
    np.add.at(S, labels, xs)
    return S


def between_cluster_correlation(xs: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Mean pilot correlation between members of clusters a != b: S_a.S_b / (n_a n_b).

    (m, m) matrix from the cluster sums, O(k n + m^2 n), no pairs of systems;
    the diagonal is nan (see :func:`mean_within_correlation`).
    """
    S = cluster_sums(xs, labels, n_clusters)
    cnt = np.bincount(labels, minlength=int(n_clusters)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (S @ S.T) / np.outer(cnt, cnt)
    np.fill_diagonal(out, np.nan)
    return out


def mate_correlation(xs: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Each system's mean pilot correlation with the other members of its cluster.

    x_i.(S_a - x_i) / (n_a - 1), O(k n); nan for singletons. A system put in the
    wrong cluster has a mate correlation near 0 where its mates' is near rho.
    """
    S = cluster_sums(xs, labels, n_clusters)
    cnt = np.bincount(labels, minlength=int(n_clusters)).astype(np.float64)
    own = np.einsum("ij,ij->i", xs, S[labels]) - np.einsum("ij,ij->i", xs, xs)
    with np.errstate(invalid="ignore", divide="ignore"):
        return own / (cnt[labels] - 1.0)
