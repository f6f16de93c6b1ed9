"""Selection on tabular NAS problems (CRN, budgets) and the analysis helpers of applications/nas."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import rands
from rands.applications.nas.analysis import (arch_ops_codes, benchmark_summary, crn_pilot, op_frequencies,
                                             shared_ops_within_across, structural_groupings,
                                             table_from_records)
from rands.applications.nas.space import EDGES, N_ARCHS, OPS, arch_string, is_degenerate, ops_matrix
from rands.applications.nas.tabular import TabularNAS
from rands.clustering import adjusted_rand_index
from rands.errors import ParameterError
from rands.streams import Streams


def clustered_table(n_per: int = 6, n_clusters: int = 3, n_seeds: int = 20, seed: int = 0):
    """k = n_per*n_clusters architectures; acc[i, j] = a_i + 3 z[c(i), j]: within a cluster the
    seeds move together (correlation 1), clusters have independent seed effects."""
    rng = np.random.default_rng(seed)
    k = n_per * n_clusters
    c = np.repeat(np.arange(n_clusters), n_per)
    a = 80.0 + rng.permutation(k) * 0.5            # distinct means, best gap 0.5
    z = rng.standard_normal((n_clusters, n_seeds))
    table = a[:, None] + 3.0 * z[c]
    archs = [arch_string(int(i)) for i in rng.choice(N_ARCHS, size=k, replace=False)]
    return TabularNAS(table, archs), c


def test_crn_reads_the_same_seed_for_every_architecture():
    prob, _ = clustered_table(n_clusters=1)
    pil = crn_pilot(prob, 12, seed=(7, 1))
    # one cluster: acc = a_i + common seed effect, so under CRN the differences are exact
    diffs = pil - pil[0]
    np.testing.assert_allclose(diffs, (prob.true_means - prob.true_means[0])[:, None] * np.ones((1, 12)),
                               atol=1e-9)
    assert np.ptp(pil[0]) > 0                       # the replications do read different seeds
    # same samples as the engine's own draw under CRN
    k = prob.k
    v = prob.simulate(np.repeat(np.arange(k), 12), np.tile(np.arange(12), k), Streams((7, 1), crn=True))
    np.testing.assert_array_equal(v.reshape(k, 12), pil)


def test_p3c_screening_free_respects_budget_and_recovers_clusters():
    prob, c = clustered_table()
    budget = 12 * prob.k
    proc = rands.procedures.make("p3c", budget=budget, n0=6, n_clusters=3)
    assert proc.crn_enabled and proc.kind == "fixed_budget"
    hits = 0
    for s in range(4):
        res = rands.select(prob, proc, seed=(11, s))
        assert res.total_samples <= budget
        assert res.sample_sizes.sum() == res.total_samples
        lab = np.asarray(res.extras["labels"])
        assert adjusted_rand_index(c, lab) == pytest.approx(1.0)   # exact correlation-1 clusters
        hits += res.best == int(np.argmax(prob.true_means))
    assert hits >= 3


@pytest.mark.parametrize("name, params", [("efg", {"n0": 4}), ("equal", {}), ("ocba", {"n0": 4}),
                                          ("fbkt", {}), ("dc", {"n0": 4, "n_groups": 3})])
def test_fixed_budget_procedures_run_with_crn_within_budget(name, params):
    prob, _ = clustered_table(n_clusters=1)
    budget = 10 * prob.k
    if name != "dc":
        params = {**params, "crn": True}
    proc = rands.procedures.make(name, budget=budget, **params)
    assert proc.crn_enabled
    res = rands.select(prob, proc, seed=3)
    assert res.total_samples <= budget
    # one cluster + CRN: any two systems sampled on the same replications compare exactly,
    # so with every system at >= 1 common sample the ordering at the first stage is exact
    assert np.all(res.sample_sizes >= 1)


def test_efg_crn_systems_with_equal_counts_read_the_same_seeds():
    """Additive table acc = a_i + z_seed: under CRN two systems with the same sample count read
    replications 0..n-1, hence the same seeds, so their mean difference is exactly a_i - a_l."""
    prob, _ = clustered_table(n_clusters=1)
    for crn in (True, False):
        res = rands.select(prob, "efg", seed=(5, 1), budget=8 * prob.k, n0=3, crn=crn)
        n = np.asarray(res.sample_sizes)
        off = np.asarray(res.means) - prob.true_means
        same = [np.ptp(off[n == c]) for c in np.unique(n) if np.sum(n == c) >= 2]
        assert same, "expected systems sharing a sample count"
        if crn:
            assert max(same) < 1e-9
        else:
            assert max(same) > 1e-3


# ------------------------------------------------------------------ analysis helpers
def _brute_shared(codes, labels):
    w, a = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        s = int(np.sum(codes[i] == codes[j]))
        (w if labels[i] == labels[j] else a).append(s)
    return np.mean(w), np.mean(a)


def test_shared_ops_within_across_matches_pair_loop():
    rng = np.random.default_rng(4)
    codes = ops_matrix(rng.choice(N_ARCHS, size=37, replace=False))
    labels = rng.integers(0, 4, size=37)
    got = shared_ops_within_across(codes, labels)
    w, a = _brute_shared(codes, labels)
    assert got["within"] == pytest.approx(w) and got["across"] == pytest.approx(a)
    allp = np.mean([np.sum(codes[i] == codes[j]) for i, j in itertools.combinations(range(37), 2)])
    assert got["all_pairs"] == pytest.approx(allp)


def test_shared_ops_and_frequencies_on_constructed_clusters():
    conv = OPS.index("nor_conv_3x3")
    none = OPS.index("none")
    codes = np.array([[conv] * 6] * 4 + [[none] * 6] * 3)
    labels = np.array([5, 5, 5, 5, 2, 2, 2])
    got = shared_ops_within_across(codes, labels)
    assert got["within"] == 6.0 and got["across"] == 0.0
    assert got["within_pairs"] == 6 + 3 and got["across_pairs"] == 12
    f = op_frequencies(codes, labels)            # rows in sorted label order: 2, 5
    np.testing.assert_array_equal(f[0], np.eye(len(OPS))[none])
    np.testing.assert_array_equal(f[1], np.eye(len(OPS))[conv])
    with pytest.raises(ParameterError):
        op_frequencies(codes, labels[:-1])


def test_structural_groupings_known_cells():
    cells = {
        "all_none": ("none",) * 6,
        "all_conv3": ("nor_conv_3x3",) * 6,
        # 0->1 skip, 1->2 conv3, 2->3 skip: the only path goes through the conv
        "conv_on_path": ("skip_connect", "none", "nor_conv_3x3", "none", "none", "skip_connect"),
        # 0->2 conv3 but 2 is a dead end; 0->3 skip is the only path
        "conv_off_path": ("none", "nor_conv_3x3", "none", "skip_connect", "none", "none"),
    }
    codes = arch_ops_codes([arch_string(v) for v in cells.values()])
    g = structural_groupings(codes)
    np.testing.assert_array_equal(g["conv3_path"], [0, 2, 2, 1])
    np.testing.assert_array_equal(g["degenerate"], [1, 0, 0, 0])
    np.testing.assert_array_equal(g["n_none"], [6, 0, 3, 4])
    np.testing.assert_array_equal(g["n_conv3"], [0, 6, 1, 1])
    # degenerate flag agrees with space.is_degenerate on the whole space
    allc = ops_matrix(np.arange(N_ARCHS))
    deg = structural_groupings(allc)["degenerate"].astype(bool)
    ref = np.array([is_degenerate(tuple(OPS[o] for o in row)) for row in allc[::7]])
    np.testing.assert_array_equal(deg[::7], ref)
    assert len(EDGES) == allc.shape[1]


def test_benchmark_summary_and_records():
    s = benchmark_summary([90.0, 91.0, 90.6, 89.0, 91.0 - 0.5], delta=0.5)
    assert s["best"] == 1 and s["runner_up"] == 2 and s["gap"] == pytest.approx(0.4)
    assert s["n_within_delta"] == 2            # 91.0 and 90.6; 90.5 is on the boundary, excluded as in validate
    recs = [{"arch": a, "seed": sd, "valid_acc": 0.5 + 0.01 * a + 0.001 * sd}
            for a in (3, 9) for sd in (0, 1, 2)] + [{"arch": 3, "seed": 3, "valid_acc": 0.9}]
    prob, seeds = table_from_records(recs)
    assert seeds == [0, 1, 2] and prob.table.shape == (2, 3)
    np.testing.assert_allclose(prob.true_means, [53.1, 59.1])
    with pytest.raises(ParameterError):
        table_from_records(recs, min_seeds=4)


def test_label_permutation_test_detects_structure_and_not_noise():
    from rands.applications.nas.analysis import label_permutation_test
    conv = OPS.index("nor_conv_3x3")
    rng = np.random.default_rng(9)
    codes = ops_matrix(rng.choice(N_ARCHS, size=60, replace=False))
    structured = (codes[:, 0] == conv).astype(np.int64)     # clusters = conv3x3 on edge 0 or not
    stat = lambda lab: shared_ops_within_across(codes, lab)["within"]  # noqa: E731
    res = label_permutation_test(structured, stat, n_perm=99, seed=1)
    assert res["p_value"] == pytest.approx(0.01) and res["observed"] > res["null_mean"]
    noise = label_permutation_test(rng.integers(0, 2, 60), stat, n_perm=99, seed=2)
    assert noise["p_value"] > 0.01
    with pytest.raises(ParameterError):
        label_permutation_test(structured, stat, n_perm=0)
