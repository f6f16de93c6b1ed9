"""KN's boundary parameter c (Kim & Nelson 2001): the constant, the rule, the guarantee."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

import rands
from rands.errors import ParameterError
from rands.procedures.fixed_precision import KN
from rands.procedures.fixed_precision.constants import kn_eta, kn_h2, kn_h2_many, kn_wrong_exit
from rands.procedures.p3c import P3C


def _fabian(y: float, c: int) -> float:
    """Fabian (1974): P(a Brownian motion with drift 2 c lambda leaves |W| < a - lambda t
    through the lower side), y = 2 a lambda / sigma^2."""
    return sum((-1) ** (l + 1) * (1 - 0.5 * (l == c)) * np.exp(-y * (2 * c - l) * l)
               for l in range(1, c + 1))


def test_c1_is_the_closed_form():
    for k, alpha, n0 in ((2, 0.05, 10), (64, 0.025, 30), (10**5, 0.05, 20)):
        assert kn_h2(k, alpha, n0, 1) == 2 * kn_eta(k, alpha, n0) * (n0 - 1)
        assert kn_wrong_exit(kn_h2(k, alpha, n0), k, n0, 1) == pytest.approx(alpha, rel=1e-12)


@pytest.mark.parametrize("c", [2, 3])
@pytest.mark.parametrize("k,alpha,n0", [(2, 0.05, 10), (256, 0.0475, 30), (10**4, 0.025, 12)])
def test_h2_solves_fabians_bound_by_quadrature(c, k, alpha, n0):
    """(k - 1) E[Fabian(y S^2 / sigma^2)] = alpha at h^2 = kn_h2(k, alpha, n0, c), with
    y = h^2 / (2 c^2) and S^2 / sigma^2 ~ chi2_nu / nu, integrated numerically (independent
    of the closed-form moments kn_h2 solves)."""
    nu = n0 - 1
    h2 = kn_h2(k, alpha, n0, c)
    f = lambda x: _fabian(h2 / (2 * c * c) * x / nu, c) * stats.chi2.pdf(x, nu)  # noqa: E731
    val, _ = integrate.quad(f, 0, np.inf, limit=200, epsabs=1e-14, epsrel=1e-11)
    assert (k - 1) * val == pytest.approx(alpha, rel=1e-7)
    assert h2 > kn_h2(k, alpha, n0, c - 1)            # a larger c needs a larger h^2


@pytest.mark.parametrize("c", [1, 2, 3])
def test_h2_for_many_group_sizes_at_once(c):
    """The vectorised solver (P3C's cost model) gives each size's h^2, solving the bound to
    near machine precision."""
    ks = np.array([2, 3, 64, 257, 10**5])
    got = kn_h2_many(ks, 0.04, 20, c)
    for k, h2 in zip(ks, got):
        assert h2 == pytest.approx(kn_h2(int(k), 0.04, 20, c), rel=1e-12)
        assert kn_wrong_exit(h2, int(k), 20, c) == pytest.approx(0.04, rel=1e-12)


def test_fabians_formula_matches_brownian_motion():
    """The formula kn_h2 rests on, against 40,000 simulated paths (step 0.002) for c = 2:
    the simulated wrong-exit frequency lies within 4 standard errors of the formula, less a
    small allowance for the discrete steps (which can only miss crossings)."""
    rng = np.random.default_rng(0)
    c, lam, a, dt, n = 2, 0.5, 1.0, 0.002, 40_000
    drift = 2 * c * lam
    w = np.zeros(n)
    open_ = np.ones(n, dtype=bool)
    low = np.zeros(n, dtype=bool)
    for step in range(1, int(a / lam / dt) + 1):
        idx = np.flatnonzero(open_)
        if idx.size == 0:
            break
        w[idx] += drift * dt + np.sqrt(dt) * rng.standard_normal(idx.size)
        b = a - lam * step * dt
        lo, hi = w[idx] < -b, w[idx] > b
        low[idx[lo]] = True
        open_[idx[lo | hi]] = False
    want = _fabian(2 * a * lam, c)
    se = np.sqrt(want * (1 - want) / n)
    assert want - 4 * se - 0.003 <= low.mean() <= want + 4 * se


@pytest.mark.parametrize("c", [2, 3])
def test_kn_takes_the_decisions_of_the_rule(samples, c):
    """KN(c) takes exactly the decisions and sample sizes of the rule written from the
    formulas (CRN, 6 seeds, conftest.kn_reference)."""
    from conftest import kn_reference
    prob = rands.problems.make("clustered", k=7, p=2, rho=0.6, delta=0.4)
    stages = 0
    for seed in range(6):
        r = rands.select(prob, KN(alpha=0.05, delta=0.4, n0=10, crn=True, c=c), seed=seed)
        x = samples(prob, seed, True, 3000)
        best, n = kn_reference(x, 0, 10, 0.05, 0.4, c)
        assert r.best == best
        assert np.array_equal(r.sample_sizes, n), (seed, r.sample_sizes, n)
        stages += int(n.max() - 10)
    assert stages > 30


def test_kn_c_pcs_two_systems(pcs_test):
    """Where the bound is nearly tight (two systems exactly delta apart, noise large
    against delta, so many stages): PCS >= 0.95 at c = 2 by the binomial test (785
    macroreplications, >= 726 correct: passes at PCS 0.95 with probability 0.999, fails at
    0.90 with probability 0.99). With c = 1's h^2 in c = 2's region the error is about 0.11."""
    n, cut = pcs_test(0.95)
    prob = rands.problems.make("slippage", k=2, delta=0.5, sigma=4.0)
    v = rands.validate(prob, KN(alpha=0.05, delta=0.5, n0=10, c=2), macroreps=n, seed=3)
    assert int(np.sum(v.correct)) >= cut, v.row()


def test_larger_c_ends_a_clear_lead_sooner():
    """One cluster of 128 at rho 0.9, delta 0.1, n0 = 30: c = 2 takes fewer samples than c = 1
    on the same seeds (the issue 16 regime), and both select the best."""
    prob = rands.problems.make("clustered", k=128, p=1, rho=0.9, delta=0.1)
    tot = {c: 0 for c in (1, 2)}
    for seed in range(3):
        for c in (1, 2):
            r = rands.select(prob, KN(alpha=0.05, delta=0.1, n0=30, crn=True, c=c), seed=seed)
            assert r.best == 0
            tot[c] += r.total_samples
    assert tot[2] < 0.95 * tot[1], tot


def test_bad_c_is_refused():
    with pytest.raises(ParameterError, match="c"):
        KN(c=0)
    with pytest.raises(ParameterError, match="kn_c"):
        P3C(kn_c="big")
    with pytest.raises(ParameterError, match="kn_c"):
        P3C(base_params={"c": 2})
