"""Exact checks added for planted bugs the statistical tests cannot see (issue 19).

Each test recomputes a procedure's decision quantities from the problem's own random
streams (sample (i, r) is a pure function of (seed, i, r)), so it fails on any change of a
constant, a degree of freedom or a stage size, not just on a PCS drop.
"""
from __future__ import annotations

import numpy as np
import pytest

import rands
from rands.procedures.fixed_precision.constants import kn_h2, rinott_h
from rands.streams import Streams


def _samples(prob, seed, crn, n):
    k = prob.k
    sys_ = np.repeat(np.arange(k), n)
    reps = np.tile(np.arange(n), k)
    return prob.simulate(sys_, reps, Streams(seed, crn=crn)).reshape(k, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rinott_sample_sizes_are_the_rule(seed):
    """N_i = max(n0, ceil(h^2 S_i^2 / delta^2)), h = h(k, 1-alpha, n0-1), S_i^2 the ddof=1
    variance of the first n0 samples; the selected system has the largest mean of its N_i."""
    prob = rands.problems.make("mdm", k=6, delta=0.5)
    alpha, delta, n0 = 0.05, 0.5, 10
    r = rands.select(prob, "rinott", seed=seed, alpha=alpha, delta=delta, n0=n0)
    x = _samples(prob, seed, False, n0)
    h = rinott_h(prob.k, 1 - alpha, n0 - 1)
    N = np.maximum(n0, np.ceil(h * h * x.var(axis=1, ddof=1) / delta ** 2)).astype(int)
    np.testing.assert_array_equal(np.asarray(r.sample_sizes), N)
    full = _samples(prob, seed, False, int(N.max()))
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
