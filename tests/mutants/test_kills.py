"""Exact checks added for planted bugs the statistical tests cannot see (issue 19).

Each test recomputes a procedure's decision quantities from the problem's own random
streams (sample (i, r) is a pure function of (seed, i, r)), so it fails on any change of a
constant, a degree of freedom or a stage size, not just on a PCS drop.
"""
from __future__ import annotations

import numpy as np
import pytest

import rands
from rands.problems.normal import NormalProblem
from rands.procedures.fixed_budget._common import argmax_first
from rands.procedures.fixed_precision.constants import gsp_eta, kn_h2, rinott_h
from rands.procedures.fixed_precision.kt import kt_groups, kt_rounds
from rands.sampling import SamplingContext
from rands.streams import Streams


def test_rinott_sample_sizes_are_the_rule(seed, samples):
    """N_i = max(n0, ceil(h^2 S_i^2 / delta^2)), h = h(k, 1-alpha, n0-1), S_i^2 the ddof=1
    variance of the first n0 samples; the selected system has the largest mean of its N_i."""
    prob = rands.problems.make("mdm", k=6, delta=0.5)
    alpha, delta, n0 = 0.05, 0.5, 10
    r = rands.select(prob, "rinott", seed=seed, alpha=alpha, delta=delta, n0=n0)
    x = samples(prob, seed, False, n0)
    h = rinott_h(prob.k, 1 - alpha, n0 - 1)
    N = np.maximum(n0, np.ceil(h * h * x.var(axis=1, ddof=1) / delta ** 2)).astype(int)
    np.testing.assert_array_equal(np.asarray(r.sample_sizes), N)
    full = samples(prob, seed, False, int(N.max()))
    means = np.array([full[i, :N[i]].mean() for i in range(prob.k)])
    assert r.best == int(np.argmax(means))


def test_kt_round_alphas_halve_and_final_is_alpha_over_2_to_R_plus_1():
    """KT logs alpha_r = alpha / 2^r per round and the final alpha / 2^(R+1); groups <= g."""
    prob = rands.problems.make("mdm", k=23, delta=0.5)
    r = rands.select(prob, "kt", seed=4, alpha=0.05, delta=0.5, n0=10, g=4, n_groups=2)
    rounds = [e for e in r.trace if e.get("stage") == "kt_round"]
    stage1 = [e for e in r.trace if e.get("stage") == "round_kn_stage1"]
    R = r.extras["rounds"]
    assert R == 2 and len(rounds) == R == len(stage1)   # 12 per partition: 12 -> 3 -> 1
    assert [e["matches"] for e in rounds] == [6, 2]      # groups of <= 4: 4+4+4, 4+4+3; then 3, 3
    for e, s1, size in zip(rounds, stage1, (4, 3)):
        assert e["alpha"] == pytest.approx(0.05 / 2 ** e["round"], rel=1e-12)
        assert s1["h2"] == pytest.approx(kn_h2(size, e["alpha"], 10), rel=1e-12)
    assert r.extras["final_alpha"] == pytest.approx(0.05 / 2 ** (R + 1), rel=1e-12)


# --------------------------------------------------------------------------- KN, whole procedure
def _kn_brute(x, alpha, delta, n0):
    """KN (Kim & Nelson 2001) applied straight from the rule to the problem's own samples:
    h^2 = kn_h2(k, alpha, n0), S_il^2 the ddof=1 variance of X_i - X_l over the first n0; at
    stage r = n0, n0+1, ... system i leaves when some survivor l has
    sum_l(r) - sum_i(r) > max(0, h^2 S_il^2 / (2 delta) - delta r / 2).
    ``x``: samples (i, r), enough of them. Returns (best, samples per system, mean per system)."""
    k, n_max = x.shape
    P = x.cumsum(axis=1)
    d = x[:, None, :n0] - x[None, :, :n0]
    s2 = d.var(axis=2, ddof=1)
    h2 = kn_h2(k, alpha, n0)
    alive = np.ones(k, dtype=bool)
    N = np.zeros(k, dtype=int)
    r = n0
    while alive.sum() > 1:
        idx = np.flatnonzero(alive)
        s = P[idx, r - 1]
        w = np.maximum(0.0, h2 * s2[np.ix_(idx, idx)] / (2 * delta) - delta * r / 2)
        out = ((s[None, :] - s[:, None]) > w).any(axis=1)
        N[idx[out]] = r
        alive[idx[out]] = False
        r += 1
        assert r < n_max
    best = int(np.flatnonzero(alive)[0])
    N[best] = r - 1
    return best, N, np.array([x[i, :N[i]].mean() for i in range(k)])


@pytest.mark.parametrize("crn", [False, True])
def test_kn_equals_the_rule_applied_by_hand(seed, crn, samples, executor):
    """KN's selection, per-system sample sizes and means are those of the rule applied by
    hand to samples (i, r), r = 0, 1, ... (under CRN the same replications for every
    system): any change of the continuation region, of the first screening stage or of the
    replications drawn shows up as a different sample size or mean. Serial and on 2 worker
    processes (the seed contract: the same samples wherever they are drawn)."""
    prob = rands.problems.make("slippage", k=6, delta=0.5, sigma=1.0, rho=0.5 if crn else 0.0)
    kw = dict(alpha=0.05, delta=0.5, n0=10)
    r = rands.select(prob, "kn", seed=seed, crn=crn, lookahead=4, executor=executor, **kw)
    best, N, means = _kn_brute(samples(prob, seed, crn, 3000), **kw)
    assert N.max() > 10 and len(set(N)) > 2    # screening went on after the first stage
    np.testing.assert_array_equal(np.asarray(r.sample_sizes), N)
    np.testing.assert_allclose(np.asarray(r.means), means, rtol=1e-12, atol=1e-12)
    assert r.best == best


# --------------------------------------------------------------------------- KT structure
@pytest.mark.parametrize("g", [2, 3, 4, 7])
def test_kt_rounds_is_the_number_of_group_splits(g):
    """kt_rounds(size, g) is how many times kt_groups must split a partition (groups of <= g,
    one winner each) until one system is left."""
    for size in range(1, 60):
        alive, rounds = np.arange(size), 0
        while alive.size > 1:
            groups = kt_groups(alive, g)
            assert max(len(x) for x in groups) <= g
            alive = np.array([x[-1] for x in groups])
            rounds += 1
        assert kt_rounds(size, g) == rounds, (size, g)


@pytest.mark.parametrize("k,g,p", [(9, 3, 1), (5, 4, 1), (14, 3, 2)])
def test_kt_advances_the_match_winner(k, g, p, best_last):
    """With the best system last and far ahead (5 sigma, n0 = 10) every match is won by its
    best member, so KT must return it; the partition ends with exactly one finalist each."""
    r = rands.select(best_last(k), "kt", seed=3, alpha=0.05, delta=0.5, n0=10, g=g, n_groups=p)
    assert r.best == k - 1
    assert len(r.extras["finalists"]) == p
    assert r.extras["rounds"] == max(kt_rounds(int(s), g) for s in np.bincount(np.arange(k) % p))


# --------------------------------------------------------------------------- GSP constants
def test_gsp_uses_alpha1_for_screening_and_alpha2_for_rinott():
    """GSP (Ni, Ciocan, Henderson & Hunter 2017): screening constant eta from alpha1, the
    Rinott stage h from alpha2 (here unequal, so a swap shows)."""
    prob = rands.problems.make("slippage", k=8, delta=0.5)
    r = rands.select(prob, "gsp", seed=2, alpha1=0.01, alpha2=0.04, delta=0.5, n1=12, rbar=3, beta=5)
    assert r.extras["eta"] == pytest.approx(gsp_eta(8, 0.01, 12), rel=1e-12)
    assert r.extras["h"] == pytest.approx(rinott_h(8, 0.96, 11), rel=1e-12)


# --------------------------------------------------------------------------- helpers, streams, CRN
def test_argmax_first_ignores_nan_and_breaks_ties_low():
    """A system without samples has a NaN mean; it must never be selected."""
    assert argmax_first(np.array([np.nan, 1.0, 2.0, np.nan])) == 2
    assert argmax_first(np.array([1.0, 3.0, 3.0])) == 1


@pytest.mark.parametrize("crn", [False, True])
def test_crn_correlates_systems_and_independent_streams_do_not(crn, samples):
    """Under CRN the clustered normal problem's outputs of two systems at the same replication
    have correlation rho (0.8); without CRN they are independent. 4000 replications:
    the sample correlation's sd is below 0.016, the band +-0.1 is > 6 sd."""
    prob = rands.problems.make("slippage", k=3, delta=0.5, rho=0.8)
    x = samples(prob, 7, crn, 4000)
    c = np.corrcoef(x[1], x[2])[0, 1]
    assert abs(c - (0.8 if crn else 0.0)) < 0.1, c


@pytest.mark.parametrize("crn", [False, True])
def test_draw_at_a_common_start_takes_those_replications(crn, samples, slippage6):
    """ctx.draw(systems, n, start=s) returns samples (i, s), ..., (i, s+n-1) of every system
    (the CRN pairing: the r-th samples of systems drawn at one start share a replication);
    with one start per system, each its own."""
    x = samples(slippage6, 3, crn, 20)
    ctx = SamplingContext(slippage6, Streams(3, crn=crn))
    np.testing.assert_array_equal(ctx.draw(np.array([1, 4]), 5, start=7), x[[1, 4], 7:12])
    np.testing.assert_array_equal(ctx.draw(np.array([0, 2]), 4, start=np.array([3, 10])),
                                  np.stack([x[0, 3:7], x[2, 10:14]]))
    np.testing.assert_array_equal(ctx.draw(np.array([5]), 3), x[[5], 0:3])   # next replications


class _Recording(NormalProblem):
    """A normal problem that records every (system, replication) it simulates."""

    def simulate(self, systems, reps, streams):
        self.drawn.append(np.stack([np.asarray(systems), np.asarray(reps)], axis=1))
        return super().simulate(systems, reps, streams)


ONE_STAGE = {"lookahead": 1}     # no stage drawn ahead: every simulated sample is used


@pytest.mark.parametrize("name,params", [("p3c", {"n_clusters": 3, "base_params": ONE_STAGE}),
                                         ("dc", {"n_groups": 3, "base_params": ONE_STAGE}),
                                         ("kt", {"g": 3, "n_groups": 2, "crn": True, **ONE_STAGE})])
def test_no_sample_is_drawn_twice(name, params):
    """Every (system, replication) is simulated at most once in a selection: a later stage
    (P3C's final stage, a KT final) draws fresh replications, never the earlier stages' data."""
    prob = _Recording(means=np.repeat([0.0, 0.3, 0.6], 8) + np.tile(np.linspace(0, 0.2, 8), 3),
                      rho=0.5, clusters=np.repeat([0, 1, 2], 8).tolist())
    prob.drawn = []
    r = rands.select(prob, name, seed=4, alpha=0.05, delta=0.5, n0=10, **params)
    pairs = np.concatenate(prob.drawn)
    assert len(pairs) == r.samples_simulated == r.total_samples
    assert len(np.unique(pairs, axis=0)) == len(pairs)


@pytest.mark.parametrize("name,params", [("p3c", {"n_clusters": 3}), ("dc", {"n_groups": 3})])
def test_p3c_splits_alpha_between_groups_and_final(name, params):
    """P3C's and divide and conquer's error split: the groups run at alpha_w =
    alpha_split * alpha, the final stage at alpha - alpha_w (alpha_w recorded with the result)."""
    prob = rands.problems.make("clustered", k=12, p=3, rho=0.5, delta=1.0)
    for split in (0.3, 0.5):
        r = rands.select(prob, name, seed=1, alpha=0.05, delta=1.0, n0=10, alpha_split=split, **params)
        assert r.extras["alpha_w"] == pytest.approx(0.05 * split, rel=1e-12)
