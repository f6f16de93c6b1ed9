"""Few-shot correlation clustering: accuracy, memory, determinism across MPI ranks, inputs."""
import json
import os
import shutil
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import rands
from rands.clustering import (adjusted_rand_index, balance_assignment, mean_within_correlation,
                              shard_range, spherical_kmeans, standardize)
from rands.errors import ParameterError
from rands.streams import Streams


def pilot(prob, n0, seed=0):
    k = prob.k
    return prob.simulate(np.repeat(np.arange(k), n0), np.tile(np.arange(n0), k),
                         Streams(seed, crn=True)).reshape(k, n0)


def test_standardize_gives_pearson_correlation():
    x = np.random.default_rng(0).standard_normal((6, 12)) + np.arange(6)[:, None]
    xs = standardize(x)
    assert np.allclose(xs @ xs.T, np.corrcoef(x), atol=1e-12)
    z = standardize(np.vstack([np.ones(5), np.arange(5.0)]))
    assert np.all(z[0] == 0) and np.isclose(np.linalg.norm(z[1]), 1.0)


def test_ari_high_on_easy_instance():
    prob = rands.problems.make("clustered", k=512, p=8, rho=0.99)
    res = spherical_kmeans(pilot(prob, 10), 8, seed=1)
    assert adjusted_rand_index(prob.clusters, res.labels) > 0.97
    assert res.sizes.sum() == 512 and res.labels.min() >= 0 and res.labels.max() < 8


def test_greedy_seeding_no_worse_than_plain_on_average():
    prob = rands.problems.make("clustered", k=512, p=16, rho=0.95)
    g, p = [], []
    for s in range(5):
        x = pilot(prob, 10, s)
        g.append(adjusted_rand_index(prob.clusters, spherical_kmeans(x, 16, seed=s).labels))
        p.append(adjusted_rand_index(prob.clusters,
                                     spherical_kmeans(x, 16, seed=s, n_init=1, n_candidates=1).labels))
    assert np.mean(g) >= np.mean(p) - 1e-9 and np.mean(g) > 0.9


def test_ari_matches_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.integers(0, 5, 300), rng.integers(0, 7, 300)
        assert np.isclose(adjusted_rand_index(a, b), adjusted_rand_score(a, b), atol=1e-12)
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 2, 2]) == 1.0


def test_mean_within_correlation_matches_pairs():
    x = np.random.default_rng(1).standard_normal((30, 8))
    xs = standardize(x)
    lab = np.arange(30) % 3
    got = mean_within_correlation(xs, lab, 3)
    c = np.corrcoef(x)
    for j in range(3):
        idx = np.flatnonzero(lab == j)
        sub = c[np.ix_(idx, idx)]
        want = (sub.sum() - np.trace(sub)) / (len(idx) * (len(idx) - 1))
        assert np.isclose(got[j], want)


def test_memory_is_linear_never_k_by_k():
    k, n0 = 20_000, 10
    x = np.random.default_rng(0).standard_normal((k, n0))
    spherical_kmeans(x[:2000], 16, seed=0)          # compile outside the measurement
    tracemalloc.start()
    spherical_kmeans(x, 16, seed=0, n_init=1, max_iter=20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the pilot is 1.6 MB; a k x k float matrix would be 3.2 GB
    assert peak < 6 * k * n0 * 8, peak


def test_same_seed_same_clusters_and_degenerate_data():
    prob = rands.problems.make("clustered", k=300, p=4, rho=0.9)
    x = pilot(prob, 8)
    a, b = spherical_kmeans(x, 4, seed=7), spherical_kmeans(x, 4, seed=7)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.centroids, b.centroids)
    # three distinct directions and constant rows, five clusters asked: no crash, valid labels
    base = np.random.default_rng(0).standard_normal((3, 6))
    y = np.vstack([np.repeat(base, 20, axis=0), np.ones((5, 6))])
    r = spherical_kmeans(y, 5, seed=0)
    assert r.labels.shape == (65,) and r.sizes.sum() == 65 and set(r.labels) <= set(range(5))


def test_balance_assignment_lpt():
    w, loads = balance_assignment([7, 5, 4, 3, 3, 2], 2)
    assert sorted(loads) == [12, 12] and w[0] != w[1]
    assert np.allclose(loads, np.bincount(w, weights=[7, 5, 4, 3, 3, 2]))


def test_shard_range_covers_in_whole_chunks():
    for size in (1, 2, 3, 5):
        spans = [shard_range(10_001, r, size, 1000) for r in range(size)]
        assert spans[0][0] == 0 and spans[-1][1] == 10_001
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert all(lo % 1000 == 0 for lo, _ in spans)


def test_invalid_inputs():
    x = np.random.default_rng(0).standard_normal((10, 5))
    with pytest.raises(ParameterError, match="n_clusters"):
        spherical_kmeans(x, 11)
    with pytest.raises(ParameterError, match=">= 3 samples"):
        spherical_kmeans(x[:, :2], 2)
    with pytest.raises(ParameterError, match="non-finite"):
        spherical_kmeans(np.where(x > 1, np.nan, x), 2)
    with pytest.raises(ParameterError, match="n_init"):
        spherical_kmeans(x, 2, n_init=0)
    with pytest.raises(ParameterError, match="n_workers"):
        balance_assignment([1.0], 0)
    with pytest.raises(ParameterError, match="same length"):
        adjusted_rand_index([0, 1], [0, 1, 2])


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="needs mpiexec")
def test_mpi_sharded_clusters_identical_on_1_2_3_ranks(tmp_path):
    from rands.parallel.clustering import digest
    k, m, n0 = 12_000, 16, 10
    prob = rands.problems.make("clustered", k=k, p=m, rho=0.9)
    serial = spherical_kmeans(pilot(prob, n0, 0), m, seed=0, chunk=1000)
    want = digest(serial.labels, serial.centroids)
    env = dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1")
    for n in (1, 2, 3):
        out = subprocess.run(["mpiexec", "-n", str(n), sys.executable, "-m", "rands.parallel.clustering",
                              "--k", str(k), "--m", str(m), "--n0", str(n0), "--chunk", "1000"],
                             capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        assert rec["ranks"] == n and rec["digest"] == want
