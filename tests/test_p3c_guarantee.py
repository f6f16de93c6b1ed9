"""P3C's guarantee does not rest on the clustering (issue 16 review).

The argument (rands/procedures/p3c.py, class P3C docstring): every choice P3C makes
before conquering (pilot size, partition, alpha_split, first-stage sizes) is a
function of pilot replications only; the within-cluster base draws replications the
pilot never touched; the final draws replications no earlier stage touched. These
tests check each link on the data P3C actually requests, and PCS where the
clustering is close to random.
"""
import numpy as np
import pytest

import rands
from rands.problems.base import Problem


class _Recording(Problem):
    """Wraps a problem; records every (system, replication) simulated."""

    def __init__(self, inner):
        self.inner, self.k, self.true_means = inner, inner.k, inner.true_means
        self.name = inner.name
        self.pairs = []

    def simulate(self, systems, reps, streams):
        self.pairs.append(np.stack([np.asarray(systems), np.asarray(reps)], axis=1))
        return self.inner.simulate(systems, reps, streams)


class _ChangedAfter(Problem):
    """Same outputs as ``inner`` for replications < r0; shifted and rescaled after."""

    def __init__(self, inner, r0):
        self.inner, self.k, self.true_means, self.r0 = inner, inner.k, inner.true_means, r0
        self.name = inner.name

    def simulate(self, systems, reps, streams):
        x = self.inner.simulate(systems, reps, streams)
        late = np.asarray(reps) >= self.r0
        return np.where(late, 3.0 * x + 0.01 * np.asarray(systems), x)


def _decisions(r):
    ex = r.extras
    return (tuple(np.asarray(ex["labels"]).tolist()), ex["alpha_w"], ex["n0_within"], ex["n0_final"],
            ex["pilot_samples"], tuple(map(tuple, ex["pilot_history"])))


def test_stages_draw_disjoint_replications():
    """Pilot = replications 0..n_p-1, simulated once; within uses n_p.. ; final above all used.

    (KN's look-ahead may simulate replications it then leaves unused; the final can
    simulate those again, identical and unseen by any decision: the test checks the
    replications each stage *used*, from the per-stage counts.)
    """
    prob = _Recording(rands.problems.make("clustered", k=64, p=4, rho=0.9, delta=0.2))
    r = rands.select(prob, "p3c", seed=3, alpha=0.05, delta=0.2, n0=10, n_clusters=4)
    ex = r.extras
    pairs = np.concatenate(prob.pairs)
    n_p = ex["pilot_samples"] // prob.k
    wn = np.asarray(ex["within_n"])
    fin = np.asarray(r.sample_sizes) - n_p - wn
    assert np.all(fin[ex["winners"]] > 0) and fin.sum() == ex["final_samples"]
    top = n_p + int(wn.max())                 # the final's replications start here or later
    for i in range(prob.k):
        reps = pairs[pairs[:, 0] == i, 1]
        assert np.array_equal(np.sort(reps[reps < n_p]), np.arange(n_p))     # pilot, once
        assert np.isin(np.arange(n_p, n_p + wn[i]), reps).all()              # within: after it
    for w in ex["winners"]:
        reps = pairs[pairs[:, 0] == w, 1]
        assert np.isin(np.arange(top, top + fin[w]), reps).all()             # final: fresh


def test_pre_conquer_choices_use_the_pilot_only():
    """Changing every replication >= pilot_max leaves partition, alpha_split, n0s and pilot alone."""
    base = rands.problems.make("clustered", k=128, p=8, rho=0.9, delta=0.1)
    kw = dict(alpha=0.05, delta=0.1, n0=10, n_clusters=8)
    a = rands.select(base, "p3c", seed=7, **kw)
    b = rands.select(_ChangedAfter(base, 40), "p3c", seed=7, **kw)
    assert a.extras["pilot_samples"] <= 40 * base.k
    assert _decisions(a) == _decisions(b)
    assert a.total_samples != b.total_samples                       # the later data did change


def test_pcs_when_clusters_are_nearly_random():
    """rho = 0.2, a 3-sample pilot, 16 clusters of 4: ARI near 0, PCS still >= 1 - alpha."""
    prob = rands.problems.make("clustered", k=64, p=16, rho=0.2, delta=0.5)
    v = rands.validate(prob, "p3c", macroreps=300, seed=21, alpha=0.05, delta=0.5, n0=10, pilot=3,
                       n_clusters=16)
    assert v.pcs_ci[1] >= 0.95, v.row()


# ------------------------------------------------------------------ the head start (issue 16)
@pytest.mark.parametrize("c", [1, 2])
def test_head_start_matches_the_reference_kn(c):
    """One cluster (no final): P3C's within KN with the pilot as head start takes exactly
    the decisions and sample sizes of KN written from the formulas, with sums over the
    pilot + fresh replications and the variance from the fresh first stage only; also with
    the boundary parameter c = 2 (kn_c)."""
    from conftest import draw_samples, kn_reference
    prob = rands.problems.make("clustered", k=6, p=2, rho=0.5, delta=0.5)
    kw = dict(alpha=0.05, delta=0.5, n0=10, pilot=8, n_clusters=1, alpha_split=0.5, n0_auto=False,
              kn_c=c)
    stages = 0
    for seed in range(6):
        r = rands.select(prob, "p3c", seed=seed, **kw)
        assert r.extras["pilot_samples"] == 8 * prob.k
        assert r.extras["c_within"] == c
        x = draw_samples(prob, seed, True, 2000)
        best, n = kn_reference(x, 8, 10, 0.025, 0.5, c)
        assert r.best == best
        assert np.array_equal(r.sample_sizes, n), (seed, r.sample_sizes, n)
        stages += int(n.max() - 18)
        off = rands.select(prob, "p3c", seed=seed, head_start=False, **kw)
        assert np.all(off.sample_sizes >= 18)                  # old behaviour: a fresh start
    assert stages > 20                                           # the sequential stage was exercised


def test_head_start_sums_are_pilot_plus_fresh():
    """Engine level: each row's running sum = the sum of its replications 0..n_i-1 (pilot and
    fresh), n_i its samples (pilot included), exact up to rounding; CRN rows share replications."""
    from conftest import draw_samples
    from rands.procedures.fixed_precision.kn_engine import kn_matches
    from rands.sampling import SamplingContext
    prob = rands.problems.make("clustered", k=12, p=3, rho=0.8, delta=0.3)
    ctx = SamplingContext(prob, rands.Streams(4, crn=True))
    pilot = ctx.draw(np.arange(12), 7)
    groups = [np.arange(0, 5), np.arange(5, 12)]
    st = {}
    kn_matches(ctx, groups, alpha=0.05, delta=0.3, n0=10, crn=True, st=st,
               head_sums=pilot.sum(axis=1), head_n=7)
    x = draw_samples(prob, 4, True, int(ctx.n.max()))
    assert np.all(ctx.n >= 17)
    want = np.array([x[i, :ctx.n[i]].sum() for i in range(12)])
    assert np.allclose(st["sums"], want, rtol=1e-12, atol=1e-9)
    assert np.allclose(ctx.sums, want)                           # the context counted the same samples


def test_head_start_pcs_hard_cell():
    """PCS >= 1 - alpha (Wilson upper bound) where the head start carries most of the
    evidence: a 20-sample pilot against a 10-sample fresh first stage, weak clusters
    (rho = 0.3, ARI near 0), small delta relative to the noise."""
    prob = rands.problems.make("clustered", k=32, p=8, rho=0.3, delta=0.25)
    v = rands.validate(prob, "p3c", macroreps=300, seed=33, alpha=0.05, delta=0.25, n0=10, pilot=20,
                       n_clusters=8, n0_auto=False)
    assert v.pcs_ci[1] >= 0.95, v.row()
