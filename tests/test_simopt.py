"""SimOpt models as systems: streams, means against SimOpt's own replications, errors, config."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import integrate

pytest.importorskip("simopt")   # the simopt extra; .ci/run installs it

from mrg32k3a.mrg32k3a import MRG32k3a  # noqa: E402
from simopt import directory  # noqa: E402
from simopt.problem import Solution  # noqa: E402

import rands  # noqa: E402
from rands.errors import ParameterError  # noqa: E402
from rands.problems.simopt import SimOptProblem, from_simopt  # noqa: E402
from rands.streams import Streams  # noqa: E402


def sscont_cost(r):
    return r["avg_backorder_costs"] + r["avg_order_costs"] + r["avg_holding_costs"]


def _rands_samples(prob, n, seed=11, crn=False):
    systems = np.repeat(np.arange(prob.k), n)
    reps = np.tile(np.arange(n), prob.k)
    return prob.simulate(systems, reps, Streams(seed, crn=crn)).reshape(prob.k, n)


def _simopt_samples(problem_name, x, n, model_fixed_factors, stream=0):
    """n replications at decision x through SimOpt's own Problem/Solution machinery."""
    problem = directory.problem_directory[problem_name](model_fixed_factors=model_fixed_factors)
    sol = Solution(tuple(x), problem)
    sol.attach_rngs([MRG32k3a(s_ss_sss_index=[stream, j, 0]) for j in range(problem.model.n_rngs)])
    problem.simulate(sol, n)
    return np.asarray(sol.objectives[:n, 0], dtype=float), problem


def _agree(a, b, z=4.5):
    """Two independent sample means agree within z standard errors."""
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return abs(a.mean() - b.mean()) <= z * se, (a.mean(), b.mean(), se)


def test_jumps_match_mrg32k3a_positions():
    prob = from_simopt("SSCONT", grid={"s": [700, 800]}, response=sscont_cost, minimize=True)
    rng = np.random.default_rng(5)
    for _ in range(4):
        key = int(rng.integers(0, 2**63)) * 2 + 1
        stream = key >> 14
        start = prob._stream_start(np.uint64(key))
        for r in (0, 1, 2, 1000, int(rng.integers(0, 2**40))):
            mine = prob.mrg_states(start, r)
            ref = [tuple(int(v) for v in MRG32k3a(s_ss_sss_index=[stream, r, j]).get_current_state())
                   for j in range(2)]
            assert mine == ref


def test_fast_generator_is_the_constructors():
    from rands.problems import simopt as so
    state = (4294967086, 1, 2, 4294944442, 3, 7)
    g, ref = so._generator(state), MRG32k3a(ref_seed=state)
    assert so._FAST is True               # the pinned mrg32k3a takes the fast path
    assert so._same(g, ref)
    assert [g.expovariate(2.0) for _ in range(5)] == [ref.expovariate(2.0) for _ in range(5)]


def test_sample_is_simopt_replicate_at_stream_substream_position():
    prob = from_simopt("SSCONT", grid={"s": [700, 900], "S": [1600]}, response=sscont_cost,
                       minimize=True)
    streams = Streams(3)
    got = prob.simulate(np.array([1, 0, 1]), np.array([4, 9, 0]), streams)
    for n, (i, r) in enumerate([(1, 4), (0, 9), (1, 0)]):
        stream = int(streams.key_of(i)) >> 14
        model = directory.model_directory["SSCONT"](fixed_factors=prob.settings[i])
        model.before_replicate([MRG32k3a(s_ss_sss_index=[stream, r, j]) for j in range(2)])
        resp, _ = model.replicate()
        assert got[n] == -sscont_cost(resp)


def test_cntnews_means_match_closed_form_and_simopt():
    qs = [0.05, 0.19, 0.45]
    prob = from_simopt("CNTNEWS", grid={"order_quantity": qs}, response="profit")
    ours = _rands_samples(prob, 3000)
    for i, q in enumerate(qs):
        theirs, _ = _simopt_samples("CNTNEWS-1", [q], 3000, {})
        ok, info = _agree(ours[i], theirs)
        assert ok, (q, info)
        # Burr XII demand, F(x) = 1 - (1 + x^2)^-20: E profit = (9 - 1) E min(D, q) - (5 - 1) q
        emin = integrate.quad(lambda x: (1 + x * x) ** -20.0, 0, q)[0]
        exact = 8 * emin - 4 * q
        se = ours[i].std(ddof=1) / np.sqrt(ours[i].size)
        assert abs(ours[i].mean() - exact) <= 4.5 * se, (q, ours[i].mean(), exact, se)


def test_sscont_means_match_simopt():
    settings = [{"s": 600, "S": 1200}, {"s": 900, "S": 2000}, {"s": 1200, "S": 1500}]
    fixed = {"n_days": 60, "warmup": 10}
    prob = from_simopt("SSCONT", grid=settings, factors=fixed, response=sscont_cost, minimize=True)
    ours = -_rands_samples(prob, 250)
    for i, s in enumerate(settings):
        theirs, _ = _simopt_samples("SSCONT-1", [s["s"], s["S"] - s["s"]], 250, fixed)
        ok, info = _agree(ours[i], theirs)
        assert ok, (s, info)
    assert np.ptp(ours.mean(axis=1)) > 20   # the settings really differ (factors were applied)


def test_mm1_means_match_simopt():
    mus = [2.0, 3.0, 5.0]
    fixed = {"lambda": 1.5, "warmup": 20, "people": 50}
    prob = from_simopt("MM1", grid={"mu": mus}, factors=fixed, response="avg_sojourn_time",
                       minimize=True)
    ours = -_rands_samples(prob, 200)
    for i, mu in enumerate(mus):
        theirs, problem = _simopt_samples("MM1-1", [mu], 200, fixed)
        theirs = theirs - problem.factors["cost"] * mu ** 2   # MM1-1 adds a deterministic cost
        ok, info = _agree(ours[i], theirs)
        assert ok, (mu, info)
    assert ours[0].mean() > ours[1].mean() > ours[2].mean()


def test_crn_shares_replication_inputs_across_systems():
    prob = from_simopt("SSCONT", grid={"s": [800, 820]}, factors={"n_days": 40},
                       response=sscont_cost, minimize=True)
    crn = _rands_samples(prob, 120, crn=True)
    ind = _rands_samples(prob, 120, crn=False)
    assert np.corrcoef(crn)[0, 1] > 0.9
    assert abs(np.corrcoef(ind)[0, 1]) < 0.35
    # CNTNEWS under CRN: the same demand for every order quantity, so stockout_qty orders exactly
    news = from_simopt("CNTNEWS", grid={"order_quantity": [0.1, 0.2]}, response="stockout_qty")
    x = _rands_samples(news, 50, crn=True)
    assert np.all(x[0] >= x[1]) and np.allclose(x[0][x[1] > 0] - x[1][x[1] > 0], 0.1)


def test_same_block_any_split_and_pickle():
    prob = from_simopt("CNTNEWS", grid={"order_quantity": [0.1, 0.2, 0.3]}, response="profit")
    s = Streams((4, 2))
    systems = np.array([0, 1, 2, 2, 0, 1])
    reps = np.array([0, 5, 3, 7, 9, 0])
    whole = prob.simulate(systems, reps, s)
    parts = np.concatenate([prob.simulate(systems[:2], reps[:2], s),
                            prob.simulate(systems[2:], reps[2:], s)])
    assert np.array_equal(whole, parts)
    clone = pickle.loads(pickle.dumps(prob))
    assert np.array_equal(clone.simulate(systems, reps, s), whole)


def test_select_finds_best_newsvendor_quantity():
    qs = [0.05, 0.1, 0.19, 0.3, 0.45]
    prob = from_simopt("CNTNEWS", grid={"order_quantity": qs}, response="profit")
    res = rands.select(prob, "kn", seed=2, alpha=0.05, delta=0.01, n0=20)
    assert res.best == 2 and res.best_label == "order_quantity=0.19"


@pytest.mark.parametrize("kwargs, needle", [
    (dict(model="NOPE", grid={"s": [1, 2]}), "unknown SimOpt model 'NOPE'; valid: AMUSEMENTPARK"),
    (dict(model="SSCONT", grid={"ss": [1, 2]}), "unknown factor(s) ['ss'] for SimOpt model SSCONT; valid:"),
    (dict(model="SSCONT-1", grid={"s": [1, 2]}), "'SSCONT-1' is a SimOpt problem, not a model: its model is 'SSCONT'"),
    (dict(model="SSCONT", grid={"s": [1, 2]}, response="cost"),
     "unknown response 'cost' of SimOpt model SSCONT; valid: avg_backorder_costs"),
    (dict(model="SSCONT", grid={"s": [700, 800]}), "has several responses: pass response="),
    (dict(model="SSCONT", grid={"s": [700, 2500]}, response="order_rate"),
     "refuses system 1 (s=2500)"),
    (dict(model="SSCONT", grid={"s": [700]}, response="order_rate"), "at least 2 are needed"),
    (dict(model="SSCONT", grid=None), "grid is required"),
    (dict(model="SSCONT", grid={"s": [700, 800]}, response=lambda r: r["nope"]),
     "response callable failed"),
])
def test_errors_name_the_input_and_the_valid_ones(kwargs, needle):
    with pytest.raises(ParameterError) as exc:
        SimOptProblem(**kwargs)
    assert needle in str(exc.value)


def test_non_scalar_response_refused():
    with pytest.raises(ParameterError, match="not a scalar; scalar responses: longest_path_length"):
        SimOptProblem("SAN", grid={"arc_means": [(1.0,) * 13, (2.0,) * 13]},
                      response="longest_path_to_all_nodes")


def test_config_form(tmp_path):
    from rands.cli import load_config, run_config
    cfg = tmp_path / "news.toml"
    cfg.write_text('[problem]\nname = "simopt"\nmodel = "CNTNEWS"\nresponse = "profit"\n'
                   '[problem.grid]\norder_quantity = [0.05, 0.19, 0.45]\n'
                   '[procedure]\nname = "kn"\nalpha = 0.05\ndelta = 0.01\nn0 = 20\n'
                   '[run]\nseed = 1\n')
    res = run_config(load_config(cfg))
    assert res.best == 1
    assert res.problem["model"] == "CNTNEWS" and res.problem["grid"] == {
        "order_quantity": [0.05, 0.19, 0.45]}
    with pytest.raises(ParameterError, match="unknown parameter.*'modle'.*valid: model, grid"):
        rands.problems.make("simopt", modle="SSCONT")


def test_summary_shows_the_minimised_response():
    prob = from_simopt("SSCONT", grid={"s": [600, 900]}, factors={"n_days": 30},
                       response=sscont_cost, minimize=True)
    res = rands.select(prob, "equal", seed=1, budget=20)
    assert res.best_mean < 0
    assert res.summary().endswith(f"(minimised response: {-res.best_mean:.6g})")
    assert "minimised" not in rands.select("slippage", "equal", seed=1, problem_params={"k": 3},
                                           budget=6).summary()
