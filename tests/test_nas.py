import json

import numpy as np
import pytest

import rands
from rands.applications.nas import space
from rands.applications.nas.tabular import TabularNAS, to_api_dict
from rands.errors import ParameterError
from rands.streams import Streams


def test_space_enumerates_15625_distinct_strings():
    archs = space.enumerate_archs()
    assert len(archs) == 15625 == len(set(archs))
    assert archs[space.arch_index(("nor_conv_3x3",) * 6)] == \
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("i", [0, 1, 777, 15624])
def test_string_round_trip(i):
    s = space.arch_string(i)
    assert space.arch_index(s) == i
    assert space.arch_string(space.parse_arch(s)) == s
    assert list(space.ops_matrix([i])[0]) == [space.OPS.index(o) for o in space.parse_arch(s)]


@pytest.mark.parametrize("bad", ["|nor_conv_3x3~0|", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", 5])
def test_malformed_strings_are_refused(bad):
    with pytest.raises(ParameterError):
        space.parse_arch(bad)


def _tiny_mini(n_archs=4, n_seeds=3, seed=0):
    rng = np.random.default_rng(seed)
    idx = sorted(rng.choice(space.N_ARCHS, n_archs, replace=False).tolist())
    acc = rng.uniform(0.5, 0.9, size=(n_archs, n_seeds))
    return {"format": "rands-nas201-mini-v1", "dataset": "digits", "metric": "x-valid",
            "config": {"epochs": 2, "channels": 8, "cells": 1}, "seeds": list(range(n_seeds)),
            "arch_index": idx, "archs": [space.arch_string(i) for i in idx],
            "valid_acc": acc.tolist(), "train_seconds": np.ones((n_archs, n_seeds)).tolist()}


def test_official_api_loads_our_dict_and_the_problem_reads_it():
    nas_201_api = pytest.importorskip("nas_201_api")
    mini = _tiny_mini()
    api = nas_201_api.NASBench201API(to_api_dict(mini), verbose=False)
    assert len(api) == 4 and api[2] == mini["archs"][2]
    assert api.query_index_by_arch(mini["archs"][1]) == 1
    prob = TabularNAS.from_api(api, dataset="digits", metric="x-valid", hp="12")
    direct = TabularNAS.from_mini(mini)
    np.testing.assert_allclose(prob.table, direct.table)
    np.testing.assert_allclose(prob.true_means, 100 * np.mean(mini["valid_acc"], axis=1))


def test_tabular_samples_draw_recorded_seeds_uniformly_and_share_them_under_crn():
    mini = _tiny_mini(n_seeds=4)
    prob = TabularNAS.from_mini(mini)
    reps = np.arange(4000)
    x = prob.simulate(np.zeros(4000, dtype=np.int64), reps, Streams(1))
    vals, counts = np.unique(x, return_counts=True)
    assert set(np.round(vals, 9)) == set(np.round(prob.table[0], 9))
    assert counts.min() > 850  # about 1000 each
    crn = Streams(1, crn=True)
    a = prob.simulate(np.zeros(50, dtype=np.int64), reps[:50], crn)
    b = prob.simulate(np.ones(50, dtype=np.int64), reps[:50], crn)
    seeds_a = [int(np.flatnonzero(np.isclose(prob.table[0], v))[0]) for v in a]
    seeds_b = [int(np.flatnonzero(np.isclose(prob.table[1], v))[0]) for v in b]
    assert seeds_a == seeds_b


def test_tabular_without_replacement_reads_each_seed_once_per_block():
    """sampling="without_replacement": replications 0..n-1 of a macroreplication are a permutation of the n
    recorded seeds (n..2n-1 another one), shared by every architecture under CRN and different across
    macroreplications (seed keys)."""
    mini = _tiny_mini(n_archs=3, n_seeds=5)
    prob = TabularNAS.from_mini(mini).with_sampling("without_replacement")
    assert prob.params()["sampling"] == "without_replacement"
    seeds_of = lambda a, xs: [int(np.flatnonzero(np.isclose(prob.table[a], v))[0]) for v in xs]  # noqa: E731
    perms = set()
    for key in range(20):
        crn = Streams(key, crn=True)
        reps = np.arange(10)
        s0 = seeds_of(0, prob.simulate(np.zeros(10, dtype=np.int64), reps, crn))
        s2 = seeds_of(2, prob.simulate(np.full(10, 2, dtype=np.int64), reps, crn))
        assert sorted(s0[:5]) == list(range(5)) and sorted(s0[5:]) == list(range(5)), s0
        assert s0 == s2  # CRN: the same seed order for every architecture
        ind = seeds_of(1, prob.simulate(np.ones(5, dtype=np.int64), reps[:5], Streams(key)))
        assert sorted(ind) == list(range(5))
        perms.add(tuple(s0[:5]))
    assert len(perms) > 10  # random permutations, not a fixed order
    # the mean of a full block is the truth exactly
    x = prob.simulate(np.zeros(5, dtype=np.int64), np.arange(5), Streams(3, crn=True))
    assert x.mean() == pytest.approx(prob.true_means[0])
    with pytest.raises(ParameterError, match="sampling"):
        TabularNAS.from_mini(mini).with_sampling("bootstrap")


def test_fixed_split_is_the_same_for_every_seed():
    pytest.importorskip("torch")
    from rands.applications.nas.train import TrainConfig, split_indices
    rng = lambda s: np.random.default_rng(np.random.SeedSequence([s, 0x6E6173]))  # noqa: E731
    fixed = TrainConfig(fixed_split=True, n_test=100)
    a, b = split_indices(rng(0), 1797, fixed), split_indices(rng(1), 1797, fixed)
    for x, y in zip(a, b):
        assert x.tolist() == y.tolist()
    assert len(a[1]) == 597 and len(a[2]) == 100 and len(a[0]) == 1797 - 697
    assert sorted(a[0].tolist() + a[1].tolist() + a[2].tolist()) == list(range(1797))
    per_seed = TrainConfig()
    assert split_indices(rng(0), 1797, per_seed)[1].tolist() != split_indices(rng(1), 1797, per_seed)[1].tolist()


def test_shipped_mini_benchmark_if_built():
    from rands.applications.nas.tabular import MINI_PATH
    if not MINI_PATH.exists():
        pytest.skip("mini benchmark not built yet (python -m rands.applications.nas.build_mini)")
    prob = rands.problems.make("nas-mini")
    assert prob.k >= 500 and prob.table.shape[1] >= 10
    r = rands.select(prob, "equal", seed=0, budget=prob.k * 3, crn=True)
    assert r.best in range(prob.k)


def test_shipped_fixed_split_benchmark():
    """The rebuilt table (issue 14): 200 cells x 25 seeds, one validation split, 10 epochs; seed
    noise is training noise only, so it is far below the 2-epoch table's (median sd 8.1 points)."""
    from rands.applications.nas.tabular import FIXED_PATH
    data = json.loads(FIXED_PATH.read_text())
    assert data["config"]["fixed_split"] is True and data["config"]["epochs"] == 10
    assert data["seeds"] == list(range(25)) and len(set(data["arch_index"])) == 200
    prob = rands.problems.make("nas-mini", path=str(FIXED_PATH))
    assert prob.table.shape == (200, 25) and np.isfinite(prob.table).all()
    assert np.median(np.std(prob.table, axis=1, ddof=1)) < 2.0
    r = rands.select(prob.with_sampling("without_replacement"), "kn", seed=0, alpha=0.05, delta=0.5, n0=10,
                     crn=True)
    assert r.best in range(prob.k)


@pytest.mark.torch
def test_live_smoke_two_archs_two_replications():
    pytest.importorskip("torch")
    prob = rands.problems.make("nas-live", archs=[space.arch_index(("nor_conv_3x3",) * 6), 0], epochs=2)
    r = rands.select(prob, "equal", seed=0, budget=4, crn=True)
    assert r.total_samples == 4
    # the all-'none' cell cannot learn; the all-conv cell does
    assert r.means[0] > 50 > r.means[1]
    again = prob.simulate(np.array([0]), np.array([1]), Streams(0, crn=True))
    assert again[0] == pytest.approx(prob.simulate(np.array([0]), np.array([1]), Streams(0, crn=True))[0])


def _official_file(tmp_path, mini, extra=None):
    """A file in the official layout: the API's dict saved with torch.save, as the released .pth files are."""
    torch = pytest.importorskip("torch")
    d = to_api_dict(mini)
    if extra is not None:
        d["extra"] = extra
    path = tmp_path / "NAS-Bench-201-tiny.pth"
    torch.save(d, path)
    return path


def test_from_file_reads_an_official_format_pth_with_the_weights_only_loader(tmp_path):
    pytest.importorskip("nas_201_api")
    torch = pytest.importorskip("torch")
    mini = _tiny_mini(n_archs=5, n_seeds=3, seed=4)
    path = _official_file(tmp_path, mini)
    torch.load(path, weights_only=True)  # the layout is plain containers: the restricted unpickler accepts it
    prob = TabularNAS.from_file(path, dataset="digits", metric="x-valid", hp="200")
    direct = TabularNAS.from_mini(mini)
    np.testing.assert_allclose(prob.table, direct.table)
    assert prob.archs == mini["archs"] and prob.source == path.name
    # hp '12' (the 'less' records) holds the same table in our layout
    np.testing.assert_allclose(TabularNAS.from_file(path, dataset="digits", metric="x-valid", hp="12").table,
                               direct.table)


def test_from_file_refuses_a_pickle_with_code_unless_trusted(tmp_path):
    pytest.importorskip("nas_201_api")
    mini = _tiny_mini(n_archs=3, n_seeds=2, seed=5)
    path = _official_file(tmp_path, mini, extra=np.float64(1.5))  # numpy scalar: not allowed when weights_only
    with pytest.raises(ParameterError, match="trust_pickle"):
        TabularNAS.from_file(path, dataset="digits", metric="x-valid")
    prob = TabularNAS.from_file(path, trust_pickle=True, dataset="digits", metric="x-valid")
    np.testing.assert_allclose(prob.table, TabularNAS.from_mini(mini).table)
    import torch
    bad = tmp_path / "notnas.pth"
    torch.save({"meta_archs": []}, bad)
    with pytest.raises(ParameterError, match="arch2infos"):
        TabularNAS.from_file(bad)
