"""Analysis helpers for architecture selection on NAS-Bench-201 tables.

- :func:`table_from_records`: a :class:`TabularNAS` from per-run records (the
  build's ``.partial.jsonl``), keeping only seeds recorded for every architecture.
- :func:`benchmark_summary`: how hard the selection is (gap best - runner-up,
  number of architectures within the indifference zone).
- Clustering structure: :func:`shared_ops_within_across` (mean number of edges
  carrying the same operation for pairs inside vs across clusters, O(k) from
  per-cluster counts, no pair loop), :func:`op_frequencies` (per-cluster
  operation shares), :func:`structural_groupings` (groupings by number of
  'none' edges, a 3x3 convolution on an input->output path, degenerate cells)
  to compare with a clustering by the adjusted Rand index.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rands.errors import ParameterError

from .space import EDGES, OPS, arch_index, arch_string, ops_matrix
from .tabular import TabularNAS

_NONE = OPS.index("none")
_CONV3 = OPS.index("nor_conv_3x3")


def read_records(path: str | Path) -> list[dict]:
    """Records (one JSON object per line: arch, seed, valid_acc, ...) of a build's partial file."""
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def table_from_records(records: list[dict], *, min_seeds: int = 2) -> tuple[TabularNAS, list[int]]:
    """A TabularNAS (accuracy in %) from run records, using the seeds every architecture has.

    Returns (problem, seeds used). Raises ParameterError when fewer than ``min_seeds``
    seeds are complete.
    """
    acc: dict[tuple[int, int], float] = {(int(r["arch"]), int(r["seed"])): float(r["valid_acc"])
                                         for r in records}
    archs = sorted({a for a, _ in acc})
    seeds = sorted({s for _, s in acc})
    full = [s for s in seeds if all((a, s) in acc for a in archs)]
    if len(full) < min_seeds:
        raise ParameterError(f"only {len(full)} seed(s) recorded for every architecture; need {min_seeds}")
    table = np.array([[100.0 * acc[(a, s)] for s in full] for a in archs])
    prob = TabularNAS(table, [arch_string(a) for a in archs], source="partial", dataset="digits",
                      metric="x-valid")
    return prob, full


def benchmark_summary(true_means, delta: float) -> dict:
    """Best, runner-up, their gap, and how many systems lie within ``delta`` of the best.

    ``n_within_delta`` counts systems i with mu_i > mu_max - delta (the best included),
    the good set of PGS in :func:`rands.validate`.
    """
    mu = np.asarray(true_means, dtype=np.float64)
    if mu.ndim != 1 or mu.size < 2:
        raise ParameterError("true_means must be a 1-D array of at least 2 means")
    order = np.lexsort((np.arange(mu.size), -mu))
    best, second = int(order[0]), int(order[1])
    return {"k": int(mu.size), "best": best, "best_mean": float(mu[best]), "runner_up": second,
            "runner_up_mean": float(mu[second]), "gap": float(mu[best] - mu[second]),
            "n_tied_best": int(np.sum(mu == mu[best])),
            "n_within_delta": int(np.sum(mu > mu[best] - float(delta) * (1 - 1e-9))),
            "delta": float(delta), "top10": [float(v) for v in mu[order[:10]]]}


def arch_ops_codes(archs) -> np.ndarray:
    """(k, 6) operation codes (index into OPS) of architecture strings or indices."""
    idx = [a if isinstance(a, (int, np.integer)) else arch_index(a) for a in archs]
    return ops_matrix(idx)


def _labels(labels, k: int) -> tuple[np.ndarray, int]:
    lab = np.asarray(labels)
    if lab.shape != (k,) or not np.issubdtype(lab.dtype, np.integer):
        raise ParameterError(f"labels must be {k} integer cluster labels")
    inv = np.unique(lab, return_inverse=True)[1].astype(np.int64)
    return inv, int(inv.max()) + 1


def _pairs(n: np.ndarray) -> np.ndarray:
    n = n.astype(np.float64)
    return n * (n - 1.0) / 2.0


def shared_ops_within_across(codes: np.ndarray, labels) -> dict:
    """Mean number of shared edge operations over pairs within the same cluster and across.

    For edge e and operation o, the pairs agreeing there are C(count, 2); summing per
    cluster gives the within-cluster agreements, the rest are across. Exact, O(k * 6).
    Also returns the value expected for a random partition with the same cluster sizes
    (the overall mean over all pairs). nan where there is no pair.
    """
    codes = np.asarray(codes, dtype=np.int64)
    k = codes.shape[0]
    lab, m = _labels(labels, k)
    n_ops = len(OPS)
    within_agree = 0.0
    total_agree = 0.0
    for e in range(codes.shape[1]):
        cnt = np.bincount(lab * n_ops + codes[:, e], minlength=m * n_ops)
        within_agree += _pairs(cnt).sum()
        total_agree += _pairs(np.bincount(codes[:, e], minlength=n_ops)).sum()
    within_pairs = _pairs(np.bincount(lab, minlength=m)).sum()
    total_pairs = k * (k - 1) / 2.0
    across_pairs = total_pairs - within_pairs
    nan = float("nan")
    return {"within": within_agree / within_pairs if within_pairs else nan,
            "across": (total_agree - within_agree) / across_pairs if across_pairs else nan,
            "all_pairs": total_agree / total_pairs if total_pairs else nan,
            "within_pairs": int(within_pairs), "across_pairs": int(across_pairs)}


def op_frequencies(codes: np.ndarray, labels) -> np.ndarray:
    """(m, 5) share of the edges of each cluster's architectures carrying each operation of OPS."""
    codes = np.asarray(codes, dtype=np.int64)
    lab, m = _labels(labels, codes.shape[0])
    n_ops = len(OPS)
    cnt = np.zeros((m, n_ops))
    for e in range(codes.shape[1]):
        cnt += np.bincount(lab * n_ops + codes[:, e], minlength=m * n_ops).reshape(m, n_ops)
    return cnt / cnt.sum(axis=1, keepdims=True)


def _path_flags(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reaches output, reaches output through a 3x3 conv) per architecture, vectorized.

    A path uses only non-'none' edges from node 0 to node 3; the state of a node is
    whether it is reached at all and whether it is reached by a path with a 3x3 conv.
    """
    k = codes.shape[0]
    reach = np.zeros((k, 4), dtype=bool)
    conv = np.zeros((k, 4), dtype=bool)
    reach[:, 0] = True
    for e, (src, tgt) in enumerate(EDGES):       # EDGES are in topological order of targets
        live = codes[:, e] != _NONE
        reach[:, tgt] |= live & reach[:, src]
        conv[:, tgt] |= live & (conv[:, src] | (reach[:, src] & (codes[:, e] == _CONV3)))
    return reach[:, 3], conv[:, 3]


def structural_groupings(codes: np.ndarray) -> dict[str, np.ndarray]:
    """Groupings of architectures by structure, to compare with a clustering (ARI).

    - ``n_none``: number of 'none' edges (0..6);
    - ``conv3_path``: 0 degenerate (no input->output path), 1 a path but none through a
      3x3 conv, 2 a path through a 3x3 conv;
    - ``n_conv3``: number of 3x3-conv edges (0..6);
    - ``degenerate``: 1 if no input->output path.
    """
    codes = np.asarray(codes, dtype=np.int64)
    reach, conv = _path_flags(codes)
    return {"n_none": np.sum(codes == _NONE, axis=1).astype(np.int64),
            "conv3_path": np.where(~reach, 0, np.where(conv, 2, 1)).astype(np.int64),
            "n_conv3": np.sum(codes == _CONV3, axis=1).astype(np.int64),
            "degenerate": (~reach).astype(np.int64)}


def crn_pilot(problem, n_pilot: int, seed) -> np.ndarray:
    """(k, n_pilot) CRN pilot of every system: replications 0..n_pilot-1 under common streams.

    The same samples P3C's pilot draws with the same seed (sample (i, r) depends only on
    (seed, r) under CRN).
    """
    from rands.streams import Streams
    k = int(problem.k)
    n = int(n_pilot)
    if n < 2:
        raise ParameterError(f"n_pilot must be >= 2, got {n_pilot}")
    systems = np.repeat(np.arange(k, dtype=np.int64), n)
    reps = np.tile(np.arange(n, dtype=np.int64), k)
    return np.asarray(problem.simulate(systems, reps, Streams(seed, crn=True))).reshape(k, n)


__all__ = ["read_records", "table_from_records", "benchmark_summary", "arch_ops_codes",
           "shared_ops_within_across", "op_frequencies", "structural_groupings", "crn_pilot",
           "label_permutation_test"]


def label_permutation_test(labels, statistic, *, n_perm: int = 200, seed=0) -> dict:
    """Permutation test of a clustering statistic against random partitions of the same sizes.

    ``statistic(labels) -> float`` (larger = more structure). The null shuffles the labels
    (cluster sizes kept). Returns observed, null mean and sd, and the one-sided p-value
    (1 + #{null >= observed}) / (1 + n_perm).
    """
    lab = np.asarray(labels)
    if int(n_perm) < 1:
        raise ParameterError(f"n_perm must be >= 1, got {n_perm}")
    rng = np.random.default_rng(np.random.SeedSequence(seed if isinstance(seed, (list, tuple)) else [seed]))
    obs = float(statistic(lab))
    null = np.array([float(statistic(rng.permutation(lab))) for _ in range(int(n_perm))])
    return {"observed": obs, "null_mean": float(null.mean()), "null_sd": float(null.std(ddof=1)) if n_perm > 1
            else 0.0, "p_value": float((1 + np.sum(null >= obs - 1e-12)) / (1 + int(n_perm)))}
