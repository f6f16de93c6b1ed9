"""PASS: boundary calibration, EFER, survivors, synchronous determinism, asynchronous run."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

import rands
from rands.errors import ParameterError
from rands.procedures.pass_ import PASS, boundary, c_from_alpha, crossing_bounds


def test_parameters_validated():
    with pytest.raises(ParameterError, match="alpha"):
        PASS(alpha=1.5)
    with pytest.raises(ParameterError, match="c must be"):
        PASS(c=-1.0)
    with pytest.raises(ParameterError, match="max_samples must be >= 10"):
        PASS(n0=10, max_samples=5)
    with pytest.raises(ParameterError, match="batch"):
        PASS(batch=0)
    with pytest.raises(ParameterError, match=r"crn=True is not available: pass never uses common"):
        rands.procedures.make("pass", crn=True)      # no CRN: the guarantee needs independence


def test_c_alpha_mapping():
    assert c_from_alpha(0.05) == pytest.approx(5.991464547, rel=1e-9)     # -2 log 0.05
    lo, hi = crossing_bounds(8.6)
    assert hi == pytest.approx(math.exp(-4.3)) and lo == pytest.approx(hi / 2)
    assert PASS(alpha=0.01).c_value == pytest.approx(-2 * math.log(0.01))
    assert PASS(c=8.6).c_value == 8.6
    assert boundary(np.array([0.0]), 4.0)[0] == pytest.approx(2.0)


def test_brownian_crossing_probability_within_bounds():
    """Monte Carlo of W on a fine log grid (Brownian-bridge crossing correction): the
    one-sided crossing probability of -g_c lies in [exp(-c/2)/2, exp(-c/2)]."""
    rng = np.random.default_rng(1)
    c = 3.0                      # large probabilities keep the Monte Carlo cheap
    t = np.concatenate([[0.0], np.geomspace(1e-3, 1e6, 1500)])
    g = boundary(t, c)
    paths = 20000
    w = np.zeros(paths)
    hit = np.zeros(paths, dtype=bool)
    for j in range(t.size - 1):
        dt = t[j + 1] - t[j]
        w2 = w + rng.standard_normal(paths) * math.sqrt(dt)
        a, b = w + g[j], w2 + g[j + 1]
        p = np.where((a > 0) & (b > 0), np.exp(-2 * a * b / dt), 1.0)
        hit |= rng.random(paths) < p
        w = w2
    lo, hi = crossing_bounds(c)
    ci = binomtest(int(hit.sum()), paths).proportion_ci(0.999)
    assert ci.high >= lo and ci.low <= hi, (hit.mean(), lo, hi)


def test_best_survives_efer():
    """Slippage: the best is at least as good as the standard, so it may be eliminated with
    probability <= alpha; with 200 macroreplications the 99% CI must not exceed alpha."""
    alpha = 0.1
    lost = 0
    reps = 200
    for m in range(reps):
        r = rands.select("slippage", "pass", seed=(11, m), problem_params={"k": 10, "delta": 0.5},
                         alpha=alpha, n0=10, batch=10, max_samples=300)
        lost += 0 not in r.extras["survivors"]
    ci = binomtest(lost, reps).proportion_ci(0.99)
    assert ci.low <= alpha, (lost, reps)


def test_eliminates_clearly_worse_and_returns_survivors():
    r = rands.select("mdm", "pass", seed=3, problem_params={"k": 30, "delta": 1.0},
                     alpha=0.05, n0=10, batch=20, max_samples=2000)
    surv = r.extras["survivors"]
    assert r.best in surv and r.best == 0
    assert len(surv) < 5 and r.total_samples < 30 * 2000
    assert r.means[r.best] == max(r.means[s] for s in surv)
    again = rands.select("mdm", "pass", seed=3, problem_params={"k": 30, "delta": 1.0},
                         alpha=0.05, n0=10, batch=20, max_samples=2000)
    assert again.total_samples == r.total_samples and np.array_equal(again.means, r.means)


def test_asynchronous_on_processes():
    from rands.parallel import make_executor
    with make_executor("processes", 2) as ex:
        r = rands.select("mdm", "pass", seed=4, problem_params={"k": 40, "delta": 1.0}, executor=ex,
                         alpha=0.05, n0=10, batch=20, max_samples=1000)
    assert r.best == 0 and 0 in r.extras["survivors"]
    assert r.sample_sizes.min() >= 10 and r.sample_sizes.max() <= 1000
    assert r.total_samples == int(r.sample_sizes.sum())
    assert any(e["stage"] == "async end" for e in r.trace)


def test_asynchronous_path_keeps_the_budget_and_reports_progress():
    """The asynchronous path gets its samples only through ctx.submit/collect: a context
    budget below what PASS would use is refused before it is exceeded (submit counts the
    reserved samples), and every collected job reaches the progress callback."""
    from rands.errors import BudgetExceededError
    from rands.parallel import make_executor
    from rands.procedures.pass_ import PASS
    from rands.sampling import SamplingContext
    from rands.streams import Streams

    prob = rands.problems.make("mdm", k=40, delta=1.0)
    seen = []

    def progress(total, **info):
        seen.append((int(total), info.get("simulated")))

    with make_executor("processes", 2) as ex:
        assert ex.supports_async
        ctx = SamplingContext(prob, Streams(4), budget=1500, executor=ex, progress=progress)
        with pytest.raises(BudgetExceededError):
            PASS(alpha=0.05, n0=10, batch=20, max_samples=1000).run(ctx)
        assert ctx.total <= 1500
        assert len(seen) >= 2 and all(t <= 1500 for t, _ in seen)
        assert [t for t, _ in seen] == sorted(t for t, _ in seen) and seen[-1][0] > 400
