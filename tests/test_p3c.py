"""P3C and divide and conquer: guarantee, determinism, accounting, variants, inputs."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import rands
from rands.errors import ParameterError

KW = dict(alpha=0.05, delta=0.5, n0=10)


def clustered(k=64, p=4, rho=0.5, **kw):
    return rands.problems.make("clustered", k=k, p=p, rho=rho, delta=0.5, **kw)


def test_p3c_pcs_small_clustered_instance(pcs_test):
    """Split pilot (the default) keeps PCS >= 1-alpha where clustering is poor (rho = 0.5);
    so does divide and conquer. alpha = 0.02, so that the binomial test is affordable:
    X correct out of n = 223 macroreplications, pass iff X >= 211 (conftest.pcs_design(0.98),
    exact tails with scipy.stats.binom):
      nominal PCS 0.98: P(X < 211) = binom.cdf(210, 223, 0.98) = 0.00064  (false alarm)
      a bug, PCS 0.90:  P(X < 211) = binom.cdf(210, 223, 0.90) = 0.9902   (power)
    (at alpha = 0.05 the same power needs 785 macroreplications of P3C)."""
    n, c = pcs_test(0.98)
    assert (n, c) == (223, 211)
    prob = rands.problems.make("clustered", k=24, p=3, rho=0.5, delta=1.0)
    kw = dict(KW, delta=1.0, alpha=0.02)
    v = rands.validate(prob, "p3c", macroreps=n, seed=11, n_clusters=3, **kw)
    assert int(np.sum(v.correct)) >= c, v.row()
    d = rands.validate(prob, "dc", macroreps=n, seed=12, n_groups=3, **kw)
    assert int(np.sum(d.correct)) >= c, d.row()


@pytest.mark.parametrize("mode", ["split", "reuse", "oracle"])
def test_same_seed_same_result_and_accounting(mode):
    prob = clustered(k=96, p=4, rho=0.9)
    kw = dict(KW, n_clusters=4)
    if mode == "oracle":
        kw["partition"] = prob.clusters.tolist()
    else:
        kw["pilot_mode"] = mode
    a = rands.select(prob, "p3c", seed=5, **kw)
    b = rands.select(prob, "p3c", seed=5, **kw)
    assert a.best == b.best and a.total_samples == b.total_samples
    assert np.array_equal(a.sample_sizes, b.sample_sizes)
    # every sample counted once: the replayed pilot (reuse) is not counted again
    assert a.sample_sizes.sum() == a.total_samples
    ex = a.extras
    assert ex["pilot_samples"] + ex["within_samples"] + ex["final_samples"] == a.total_samples
    if mode == "reuse":
        assert ex["pilot_samples"] == 96 * 10 and a.sample_sizes.min() >= 10
    if mode == "split":
        assert ex["pilot_samples"] == 96 * 5
    d1 = rands.select(prob, "dc", seed=5, n_groups=4, **KW)
    d2 = rands.select(prob, "dc", seed=5, n_groups=4, **KW)
    assert d1.best == d2.best and np.array_equal(d1.sample_sizes, d2.sample_sizes)


def test_reuse_with_perfect_clusters_costs_like_oracle():
    """With unmistakable clusters the reused pilot equals the oracle's first stage."""
    prob = clustered(k=64, p=4, rho=0.999)
    o = rands.select(prob, "p3c", seed=3, partition=prob.clusters.tolist(), **KW)
    r = rands.select(prob, "p3c", seed=3, n_clusters=4, pilot_mode="reuse", **KW)
    assert np.array_equal(np.sort(np.bincount(r.extras["labels"])), np.sort(np.bincount(prob.clusters)))
    assert abs(r.total_samples - o.total_samples) <= 0.05 * o.total_samples


def test_p3c_beats_dc_when_correlated_and_kt_base_and_large_groups():
    prob = clustered(k=256, p=8, rho=0.99)
    p = np.mean([rands.select(prob, "p3c", seed=s, n_clusters=8, **KW).total_samples for s in range(3)])
    d = np.mean([rands.select(prob, "dc", seed=s, n_groups=8, **KW).total_samples for s in range(3)])
    assert p < d
    r = rands.select(prob, "p3c", seed=1, base="kt", n_clusters=8, base_params={"g": 8}, **KW)
    assert r.best == 0
    # groups above max_pairwise run with large_base (KT): still correct, no quadratic structure
    r = rands.select(prob, "p3c", seed=1, n_clusters=2, max_pairwise=16, **KW)
    assert r.best == 0 and r.extras["group_bases"] == {"kt": 2}


def test_config_with_plain_params():
    cfg = json.loads('{"procedure": "p3c", "params": {"base": "kt", "alpha": 0.05, "delta": 0.5, '
                     '"n0": 10, "n_clusters": 4, "base_params": {"g": 8}}}')
    proc = rands.procedures.make(cfg["procedure"], **cfg["params"])
    r = rands.select(clustered(k=64, rho=0.9), proc, seed=0)
    assert r.best == 0 and r.params["base"] == "kt"
    assert json.loads(r.to_json())["extras"]["n_groups"] == 4


def test_fixed_budget_screening_free():
    prob = clustered(k=128, p=4, rho=0.99)
    N = 20 * 128
    for name, kw in [("p3c", {"n_clusters": 4}), ("dc", {"n_groups": 4}),
                     ("p3c", {"n_clusters": 4, "base": "equal"})]:
        r = rands.select(prob, name, seed=2, n0=10, budget=N, **kw)
        assert r.total_samples <= N and r.total_samples >= 0.95 * N
        assert r.sample_sizes.sum() == r.total_samples
    hits = sum(rands.select(prob, "p3c", seed=s, n0=10, budget=N, n_clusters=4).best == 0 for s in range(20))
    assert hits >= 18
    assert rands.procedures.make("p3c", budget=N).kind == "fixed_budget"
    assert rands.procedures.make("p3c").kind == "fixed_precision"


def test_greedy_spends_exactly_its_budget():
    from rands.procedures.group import greedy_allocation
    from rands.sampling import SamplingContext
    from rands.streams import Streams
    prob = clustered(k=20, p=2, rho=0.5)
    ctx = SamplingContext(prob, Streams(0, crn=True))
    best = greedy_allocation(ctx, budget=500, n0=5)
    assert ctx.total == 500 and 0 <= best < 20 and ctx.n.min() == 5


def test_invalid_inputs():
    with pytest.raises(ParameterError, match="pilot_mode"):
        rands.procedures.make("p3c", pilot_mode="both")
    with pytest.raises(ParameterError, match="fixed-precision base"):
        rands.procedures.make("p3c", base="equal")
    with pytest.raises(ParameterError, match="does not allow CRN"):
        rands.procedures.make("p3c", base="rinott")
    with pytest.raises(ParameterError, match="must equal n0"):
        rands.procedures.make("p3c", pilot_mode="reuse", pilot=5, n0=10)
    with pytest.raises(ParameterError, match="pilot"):
        rands.procedures.make("p3c", pilot=2)
    with pytest.raises(ParameterError, match="alpha_split"):
        rands.procedures.make("p3c", alpha_split=1.0)
    with pytest.raises(ParameterError, match="n_clusters"):
        rands.procedures.make("p3c", n_clusters=0)
    with pytest.raises(ParameterError, match="budget=100 is below"):
        rands.select(clustered(k=64), "p3c", seed=0, budget=100, n0=10)
    with pytest.raises(ParameterError, match="partition has 3 labels"):
        rands.select(clustered(k=64), "p3c", seed=0, partition=[0, 1, 0])
    with pytest.raises(ParameterError, match="partition must be 'random'"):
        rands.procedures.make("dc", partition="by_mean")
    with pytest.raises(ParameterError, match="unknown parameter"):
        rands.procedures.make("p3c", n_groups=4)
    with pytest.raises(ParameterError, match="not parameters of 'kn'"):
        rands.procedures.make("p3c", base="kn", base_params={"g": 4})
    with pytest.raises(ParameterError, match="may not set"):
        rands.procedures.make("p3c", base="kt", base_params={"alpha": 0.1})
    with pytest.raises(ParameterError, match="base must be"):
        rands.procedures.make("p3c", base="kn", budget=1000)


def test_dc_round_robin_and_no_crn():
    prob = clustered(k=64, p=4, rho=0.0)
    r = rands.select(prob, "dc", seed=1, n_groups=4, partition="round_robin", crn=False, base="kn", **KW)
    assert np.array_equal(r.extras["labels"], np.arange(64) % 4)
    assert r.best == 0


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="needs mpiexec")
def test_p3c_under_mpi_3_ranks_equals_serial():
    code = ("import json, rands; from rands.parallel import make_executor; ex = make_executor('mpi');\n"
            "import sys\n"
            "if ex is None: sys.exit(0)\n"
            "p = rands.problems.make('clustered', k=192, p=4, rho=0.9, delta=0.5)\n"
            "r = rands.select(p, 'p3c', seed=4, executor=ex, alpha=0.05, delta=0.5, n0=10, n_clusters=4)\n"
            "ex.close(); print(json.dumps([r.best, r.total_samples, r.sample_sizes.tolist()]))\n")
    prob = clustered(k=192, p=4, rho=0.9)
    s = rands.select(prob, "p3c", seed=4, n_clusters=4, **KW)
    out = subprocess.run(["mpiexec", "-n", "3", sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=180, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    best, total, sizes = json.loads(out.stdout.strip().splitlines()[-1])
    assert best == s.best and total == s.total_samples and sizes == s.sample_sizes.tolist()


@pytest.mark.parametrize("stop_at", [1, 2])
@pytest.mark.parametrize("budget", [None, 2560])
def test_checkpoint_resume_identical(tmp_path, stop_at, budget):
    from rands.checkpoint import Checkpointer
    from rands.errors import Interrupted

    from stopping import StopAt

    prob = clustered(k=128, p=4, rho=0.9)
    kw = dict(n0=10, n_clusters=4) if budget else dict(KW, n_clusters=4)
    if budget:
        kw["budget"] = budget
    full = rands.select(prob, "p3c", seed=8, **kw)
    path = tmp_path / "p3c.npz"
    spec = {"p3c": 1, "budget": budget}
    with pytest.raises(Interrupted):
        rands.select(prob, "p3c", seed=8, checkpoint=StopAt(path, spec, interval_s=3600, stop_at=stop_at), **kw)
    again = rands.select(prob, "p3c", seed=8, checkpoint=Checkpointer(path, spec, interval_s=3600), **kw)
    assert again.best == full.best and again.total_samples == full.total_samples
    assert np.array_equal(again.sample_sizes, full.sample_sizes)
    assert np.allclose(again.means, full.means)


@pytest.mark.parametrize("kn_c", [1, 2])
def test_head_start_same_on_every_backend_and_counted_once(executor, kn_c):
    """The within KN's head start (the pilot's sums): the same result serially and with every
    group shipped to process workers (also with KN's c = 2); the pilot is counted once; it
    saves samples here."""
    prob = clustered(k=96, p=4, rho=0.9)
    kw = dict(KW, delta=0.2, n_clusters=4, pilot=10, kn_c=kn_c)
    ref = rands.select(prob, "p3c", seed=6, **kw)
    r = rands.select(prob, "p3c", seed=6, executor=executor, **kw)
    assert r.best == ref.best and np.array_equal(r.sample_sizes, ref.sample_sizes)
    ex = r.extras
    assert ex["c_within"] == kn_c
    assert r.sample_sizes.sum() == r.total_samples == ex["pilot_samples"] + ex["within_samples"] \
        + ex["final_samples"]
    assert ex["pilot_samples"] == 96 * 10 and np.all(np.asarray(ex["within_n"]) >= ex["n0_within"])
    off = rands.select(prob, "p3c", seed=6, head_start=False, **kw)
    assert off.extras["pilot_samples"] == ex["pilot_samples"] and off.total_samples > r.total_samples
