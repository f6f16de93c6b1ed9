"""Fixed-budget procedures: equal allocation, OCBA, EFG, EFG+, FBKT.

Budget accounting is exact (total <= budget, FBKT's total matches its closed form and the
PyPRS demo), results are reproducible and backend-independent, checkpoints resume to the
same answer, and PCS behaves as the theory says (increasing in the budget; at N = c k FBKT's
PCS stays flat in k while equal allocation's decays). Statistical checks use fixed seeds and
Wilson 95% intervals.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import rands
from rands.errors import ParameterError
from rands.procedures.fixed_budget import efg as efg_mod
from rands.procedures.fixed_budget._common import draw_chunked
from rands.procedures.fixed_budget.fbkt import FBKT, n_rounds, round_weight
from rands.procedures.fixed_budget.ocba import ocba_increment, ocba_ratios
from rands.sampling import SamplingContext, SerialExecutor, run_group_task
from rands.streams import Streams

PROCS = {
    "equal": {},
    "ocba": {"n0": 5, "increment": 20},
    "efg": {"n0": 5},
    "efg+": {"n0": 5},
    "fbkt": {"n0": 5},
}


# ----------------------------------------------------------------------------- budget
@pytest.mark.parametrize("name", sorted(PROCS))
@pytest.mark.parametrize("k,budget", [(2, 10), (3, 31), (7, 70), (50, 1003), (129, 5000)])
def test_budget_never_exceeded(name, k, budget):
    params = dict(PROCS[name])
    params["n0"] = min(params.get("n0", 1), budget // k) if "n0" in params else None
    if params.get("n0") is None:
        params.pop("n0")
    if name == "ocba":
        params["n0"] = max(2, params["n0"])
        if params["n0"] * k > budget:
            pytest.skip("budget below OCBA's first stage")
    r = rands.select("slippage", name, seed=3, problem_params={"k": k}, budget=budget, **params)
    assert r.total_samples <= budget
    assert int(r.sample_sizes.sum()) == r.total_samples
    assert 0 <= r.best < k


@pytest.mark.parametrize("k,p,phi", [(2, 1, 2), (5, 2, 3), (17, 4, 3), (100, 7, 4), (64, 64, 3),
                                     (10, 32, 3), (1000, 3, 2)])
def test_fbkt_total_matches_closed_form(k, p, phi):
    N, n0 = 40 * k, 4
    proc = FBKT(budget=N, n0=n0, phi=phi, n_groups=p)
    plan = proc.plan(k)
    pe = min(p, k)
    expected = n0 * k
    for g in range(pe):
        m = len(range(g, k, pe))
        r = 1
        while m > 1:
            nr = math.floor(round_weight(r, phi) * (N - n0 * k) / pe)
            expected += (nr // m) * (m - m % 2)
            m = (m + 1) // 2
            r += 1
    if pe > 1:
        expected += pe * plan["round_budgets"][plan["R"]]
    r = rands.select("slippage", proc, seed=0, problem_params={"k": k})
    assert r.total_samples == expected <= N


def test_fbkt_matches_pyprs_demo_sample_count():
    # PyPRS FBKT demo (TPMax, k = 57,624, N = 5,070,912, n0 = 8, phi = 3, 48 processors)
    # reports 4,704,528 samples on average; the count does not depend on the data.
    r = rands.select("slippage", "fbkt", seed=0, problem_params={"k": 57624},
                     budget=5_070_912, n0=8, phi=3, n_groups=48)
    assert r.total_samples == 4_704_528


def test_fbkt_round_weights_and_rounds():
    for phi in (2, 3, 5):
        assert sum(round_weight(r, phi) for r in range(1, 2000)) == pytest.approx(1.0, abs=1e-12)
    assert [n_rounds(k, p) for k, p in [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (1024, 1),
                                        (1025, 1), (100, 100), (10, 32), (57624, 48)]] == \
        [0, 1, 2, 2, 3, 10, 11, 0, 0, 11]


def test_final_rest_spends_more_but_never_over():
    k, N = 300, 6000
    a = rands.select("slippage", "fbkt", seed=1, problem_params={"k": k}, budget=N, n_groups=4)
    b = rands.select("slippage", "fbkt", seed=1, problem_params={"k": k}, budget=N, n_groups=4,
                     final="rest")
    assert a.total_samples < b.total_samples <= N
    assert N - b.total_samples < 4      # only the floor of the last split is left


def test_efg_spends_budget_exactly_and_lookahead_costs_simulation_only():
    """Look-ahead samples are counted only when consumed: the greedy spends N - n0 k in full
    and the samples simulated beyond the budget are the leftover."""
    k, N = 400, 8000
    r = rands.select("slippage", "efg", seed=2, problem_params={"k": k}, budget=N, n0=5)
    assert r.total_samples == N
    assert r.extras["greedy_samples"] == N - 5 * k
    assert r.samples_simulated == N + r.extras["lookahead_leftover"]
    exact = rands.select("slippage", "efg", seed=2, problem_params={"k": k}, budget=N, n0=5,
                         lookahead=1)
    assert exact.samples_simulated == exact.total_samples == N
    assert np.array_equal(r.sample_sizes, exact.sample_sizes) and r.best == exact.best
    assert np.array_equal(r.means, exact.means)


# ----------------------------------------------------------------------------- exactness
def _reference_greedy(prob, streams, n0, steps):
    """Textbook one-sample-at-a-time greedy (argmax of running means, lowest index on ties)."""
    k = prob.k
    v = prob.simulate(np.repeat(np.arange(k), n0), np.tile(np.arange(n0), k), streams)
    cn = np.full(k, n0)
    cs = v.reshape(k, n0).sum(axis=1)
    for _ in range(steps):
        i = int(np.argmax(cs / cn))
        cs[i] += prob.simulate(np.array([i]), np.array([cn[i]]), streams)[0]
        cn[i] += 1
    return cn


@pytest.mark.parametrize("lookahead,batch", [(1, 1), (50, 1), (400, 1), (64, 3)])
def test_greedy_with_lookahead_follows_the_exact_greedy_path(lookahead, batch):
    k, n0, N = 120, 4, 1500
    prob = rands.problems.make("slippage", k=k, delta=0.3)
    streams = Streams(11)
    ctx = SamplingContext(prob, streams, budget=N)
    draw_chunked(ctx, np.arange(k), n0)
    g = efg_mod._new_greedy_state(ctx, lookahead, batch)
    efg_mod.greedy_phase(ctx, g, target=N - n0 * k, draw_limit=N, batch=batch,
                         lookahead=lookahead, stage=1)
    # the budget is spent in full on consumed samples; the buffer is simulation only
    assert ctx.total == N and g["consumed"] == N - n0 * k
    assert np.array_equal(g["cn"], ctx.n)
    assert ctx.stats.simulated - ctx.total == g["buffered"] == int(g["blen"].sum())
    if lookahead == 1 and batch == 1:
        assert g["buffered"] == 0
    if batch == 1:
        assert np.array_equal(g["cn"], _reference_greedy(prob, streams, n0, g["consumed"]))
    # every buffered sample is the system's next replication
    assert np.array_equal(g["cn"] + g["blen"], g["dnext"])


def test_efg_exact_mode_equals_reference():
    k, n0, N = 30, 3, 400
    prob = rands.problems.make("mdm", k=k, delta=0.05)
    r = rands.select(prob, "efg", seed=4, budget=N, n0=n0, lookahead=1)
    ref = _reference_greedy(prob, Streams(4), n0, N - n0 * k)
    assert np.array_equal(r.sample_sizes, ref)
    assert r.best == int(np.argmax(r.means))


# ----------------------------------------------------------------------------- OCBA
def test_ocba_ratios_closed_form():
    means = np.array([1.0, 0.5, 0.0, 0.8])
    sds = np.array([1.0, 2.0, 1.0, 0.5])
    r = ocba_ratios(means, sds)
    d = 1.0 - means
    expect = (sds / np.where(d > 0, d, 1)) ** 2
    expect[0] = sds[0] * np.sqrt(sum(expect[i] ** 2 / sds[i] ** 2 for i in (1, 2, 3)))
    assert np.allclose(r, expect)


def test_ocba_increment_sums_and_respects_targets():
    rng = np.random.default_rng(0)
    for _ in range(50):
        k = int(rng.integers(2, 40))
        means = rng.normal(size=k)
        sds = rng.uniform(0.2, 2.0, size=k)
        n = rng.integers(2, 30, size=k)
        delta = int(rng.integers(1, 200))
        add = ocba_increment(means, sds, n, delta)
        assert add.sum() == delta and (add >= 0).all()
        # systems already above their share of the new total get nothing
        r = ocba_ratios(means, sds)
        share = (n.sum() + delta) * r / r.sum()
        assert (add[n > share + 1e-9] == 0).all() or add.sum() == delta


# ----------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("name", sorted(PROCS))
@pytest.mark.parametrize("crn", [False, True])
def test_same_seed_same_result(name, crn):
    kw = dict(problem_params={"k": 60, "rho": 0.5}, budget=1500, crn=crn, **PROCS[name])
    a = rands.select("slippage", name, seed=9, **kw)
    b = rands.select("slippage", name, seed=9, **kw)
    assert a.best == b.best and a.total_samples == b.total_samples
    assert np.array_equal(a.sample_sizes, b.sample_sizes)
    assert np.array_equal(a.means, b.means)
    c = rands.select("slippage", name, seed=10, **kw)
    assert not np.array_equal(a.means, c.means)


class _ReversedExecutor(SerialExecutor):
    """Runs group tasks in reverse order (as another worker pool might) and returns them in order."""

    name = "reversed"

    def map_groups(self, fn, tasks):
        out = [run_group_task(self.problem, self.streams, fn, t) for t in reversed(tasks)]
        return out[::-1]


@pytest.mark.parametrize("p", [1, 2, 5, 40])
@pytest.mark.parametrize("crn", [False, True])
def test_fbkt_result_does_not_depend_on_backend(p, crn):
    kw = dict(problem_params={"k": 37, "rho": 0.3}, budget=2000, n0=4, n_groups=p, crn=crn)
    a = rands.select("slippage", "fbkt", seed=5, **kw)
    b = rands.select("slippage", "fbkt", seed=5, executor=_ReversedExecutor(), **kw)
    assert a.best == b.best and a.total_samples == b.total_samples
    assert np.array_equal(a.sample_sizes, b.sample_sizes)
    assert np.allclose(a.means, b.means, rtol=0, atol=1e-12)


def test_fbkt_crn_pairs_match_replications():
    # with CRN the final among group winners uses common replication indices
    r = rands.select("slippage", "fbkt", seed=1, problem_params={"k": 12, "rho": 0.9},
                     budget=1200, n0=4, n_groups=4, crn=True)
    fin = r.extras["finalists"]
    assert len(fin) == 4 and r.best in fin


def test_fbkt_k_below_groups_and_one_group():
    r = rands.select("slippage", "fbkt", seed=0, problem_params={"k": 3}, budget=300, n0=5,
                     n_groups=8)
    assert r.extras["groups"] == 3 and r.extras["rounds"] == 0 and r.total_samples <= 300
    r = rands.select("slippage", "fbkt", seed=0, problem_params={"k": 9}, budget=900, n0=5,
                     n_groups=1)
    assert r.extras["groups"] == 1 and r.extras["rounds"] == 4 and "finalists" not in r.extras


# ----------------------------------------------------------------------------- invalid inputs
@pytest.mark.parametrize("name,params,match", [
    ("fbkt", {"budget": 90, "n0": 10}, r"budget=90 is below n0\*k"),
    ("efg", {"budget": 90, "n0": 10}, r"budget=90 is below n0\*k"),
    ("efg+", {"budget": 90, "n0": 10}, r"budget=90 is below n0\*k"),
    ("ocba", {"budget": 90, "n0": 10}, r"budget=90 is below n0\*k"),
    ("equal", {"budget": 9}, r"budget=9 is below"),
    ("fbkt", {"phi": 1}, "phi must be >= 2"),
    ("fbkt", {"phi": 2.5}, "phi must be an integer"),
    ("fbkt", {"n_groups": 0}, "n_groups must be >= 1"),
    ("fbkt", {"final": "all"}, "final must be 'round' or 'rest'"),
    ("ocba", {"n0": 1}, "n0 must be >= 2"),
    ("ocba", {"increment": 0}, "increment must be >= 1"),
    ("efg", {"batch": 0}, "batch must be >= 1"),
    ("efg", {"lookahead": 0}, "lookahead must be >= 1"),
    ("efg+", {"explore_share": 1.0}, "explore_share must be in"),
    ("efg+", {"top": 0}, "top must be >= 1"),
    ("efg", {"n0": 0}, "n0 must be >= 1"),
])
def test_invalid_inputs(name, params, match):
    with pytest.raises(ParameterError, match=match):
        rands.select("slippage", name, seed=0, problem_params={"k": 10}, **params)


# ----------------------------------------------------------------------------- checkpoints
class _Stop(Exception):
    pass


class _MemoryCheckpointer:
    """Minimal checkpointer honouring the context's contract; stops at the j-th boundary."""

    previous_wall_time = 0.0

    def __init__(self, stop_at=None, saved=None):
        self.stop_at, self.saved, self.count = stop_at, saved, 0

    def restore(self, ctx):
        if self.saved is None:
            return None
        s = self.saved
        ctx.restore_stats(s["stats"].copy())
        return {k: np.array(v, copy=True) for k, v in s["state"].items()}

    def at_boundary(self, ctx, state, force=False):
        self.count += 1
        if self.count == self.stop_at:
            self.saved = {"stats": ctx.stats.copy(),
                          "state": {k: np.array(v, copy=True) for k, v in state.items()}}
            raise _Stop


@pytest.mark.parametrize("name,params", [
    ("fbkt", {"n0": 4, "n_groups": 3}), ("fbkt", {"n0": 4, "n_groups": 1, "crn": True}),
    ("efg", {"n0": 4}), ("efg+", {"n0": 4}), ("ocba", {"n0": 4, "increment": 25}),
    ("equal", {}),
])
@pytest.mark.parametrize("stop_at", [1, 2, 5])
def test_checkpoint_resume_is_identical(name, params, stop_at):
    kw = dict(problem_params={"k": 40}, budget=1200, **params)
    full = rands.select("slippage", name, seed=8, **kw)
    counter = _MemoryCheckpointer(stop_at=10**9)
    rands.select("slippage", name, seed=8, checkpoint=counter, **kw)
    assert counter.count >= 1, "the procedure never reached a checkpoint boundary"
    ck = _MemoryCheckpointer(stop_at=min(stop_at, counter.count))   # the last boundary at most
    with pytest.raises(_Stop):
        rands.select("slippage", name, seed=8, checkpoint=ck, **kw)
    resumed = rands.select("slippage", name, seed=8, checkpoint=_MemoryCheckpointer(saved=ck.saved), **kw)
    assert resumed.best == full.best and resumed.total_samples == full.total_samples
    assert np.array_equal(resumed.sample_sizes, full.sample_sizes)
    assert np.allclose(resumed.means, full.means, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- statistics
def _pcs(name, k, budget, macroreps, seed, **params):
    return rands.validate("slippage", name, macroreps=macroreps, seed=seed,
                          problem_params={"k": k, "delta": 0.5}, budget=budget, **params)


@pytest.mark.parametrize("name,params,budgets", [
    ("fbkt", {"n0": 4}, (300, 3000)),
    ("efg", {"n0": 4}, (120, 1500)),
    ("efg+", {"n0": 4}, (120, 1500)),
    ("ocba", {"n0": 4, "increment": 20}, (120, 1500)),
    ("equal", {}, (120, 1500)),
])
def test_pcs_increases_with_budget(name, params, budgets):
    lo = _pcs(name, 20, budgets[0], 150, 100, **params)
    hi = _pcs(name, 20, budgets[1], 150, 100, **params)
    assert hi.pcs_ci[0] > lo.pcs_ci[1], (lo.row(), hi.row())


def test_fbkt_flat_in_k_while_equal_decays_at_linear_budget():
    """Budget 30 k: equal allocation's PCS decays from k = 8 to k = 1024 (0.87 -> 0.29), FBKT's
    stays flat (0.530 -> 0.498, measured with 4000 macroreplications each: decay 0.03 +- 0.011).

    Flatness test: n = 400 macroreplications at each k, pass iff X_8 - X_1024 <= 68 correct
    selections (a decay of at most 0.17), X ~ Binomial(400, p). Exact, by convolving the two
    binomial pmfs (scipy.stats.binom):
      no bug, decay 0.06 (p = 0.53 -> 0.47, ~3 se above the measured 0.03): P(pass) = 0.99922;
      a bug decaying by 0.25 (0.53 -> 0.28, under half of equal's decay):  P(fail) = 0.9902.
    """
    c = 30
    res = {}
    for k in (8, 1024):
        res["fbkt", k] = _pcs("fbkt", k, c * k, 400, 7, n0=4, phi=3)
        res["equal", k] = _pcs("equal", k, c * k, 150, 7)
    eq_small, eq_large = res["equal", 8], res["equal", 1024]
    fb_small, fb_large = res["fbkt", 8], res["fbkt", 1024]
    assert eq_large.pcs_ci[1] < eq_small.pcs_ci[0]                 # equal allocation decays
    decay = int(np.sum(fb_small.correct)) - int(np.sum(fb_large.correct))
    assert decay <= 68, (fb_small.row(), fb_large.row())           # FBKT flat (docstring)
    assert fb_large.pcs_ci[0] > eq_large.pcs_ci[1]                 # and beats equal at large k


@pytest.mark.parametrize("name,params", [("fbkt", {"n0": 4, "n_groups": 2}), ("efg", {"n0": 4}),
                                         ("efg+", {"n0": 4}), ("ocba", {"n0": 4, "increment": 25})])
def test_resume_through_the_npz_checkpointer(tmp_path, name, params):
    from rands.checkpoint import Checkpointer
    from rands.errors import Interrupted

    class _StopAtThird(Checkpointer):
        calls = 0

        def at_boundary(self, ctx, state, force=False):
            type(self).calls += 1
            if type(self).calls == 3:
                self.request_stop()
            super().at_boundary(ctx, state, force=force)

    kw = dict(problem_params={"k": 40}, budget=1200, **params)
    spec = {"procedure": name, **params}
    full = rands.select("slippage", name, seed=6, **kw)
    path = tmp_path / "run.npz"
    with pytest.raises(Interrupted):
        rands.select("slippage", name, seed=6, checkpoint=_StopAtThird(path, spec, interval_s=1e9), **kw)
    resumed = rands.select("slippage", name, seed=6, checkpoint=Checkpointer(path, spec), **kw)
    assert resumed.best == full.best and resumed.total_samples == full.total_samples
    assert np.array_equal(resumed.sample_sizes, full.sample_sizes)


def test_compiled_ocba_step_equals_reference_allocation():
    """The compiled iteration used by OCBA.run allocates exactly like ocba_increment on the
    same statistics (300 random cases: sizes, spreads, increments)."""
    from rands.procedures.fixed_budget.ocba import _ocba_step
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(2, 400))
        n = rng.integers(2, 40, k).astype(float)
        x = [rng.normal(rng.normal(0, 1), rng.uniform(0.2, 3), int(m)) for m in n]
        sums = np.array([v.sum() for v in x])
        sumsq = np.array([(v * v).sum() for v in x])
        var = np.maximum((sumsq - sums * sums / n) / (n - 1), 0)
        d = int(rng.integers(1, 500))
        want = ocba_increment(sums / n, np.sqrt(var), n.astype(np.int64), d)
        got = _ocba_step(n, sums, sumsq, d, np.zeros(k)).astype(np.int64)
        assert np.array_equal(got, want)
        assert got.sum() == d


def test_ocba_default_increment_grows_with_k():
    from rands.procedures.fixed_budget.ocba import OCBA, default_increment
    assert default_increment(50) == 100 and default_increment(10 ** 5) == 10 ** 4
    prob = rands.problems.make("slippage", k=2000, delta=0.5)
    res = rands.select(prob, OCBA(budget=60_000, n0=10), seed=3)
    assert res.total_samples == 60_000
    # (T - n0 k) / Delta = 40,000 / 200 = 200 iterations
    assert [t["iterations"] for t in res.trace if t["stage"] == "allocation"] == [200]
