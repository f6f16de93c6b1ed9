"""Fixed-precision procedures: constants, guarantees, determinism, checkpoints, errors."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats

import rands
from rands.errors import Interrupted, ParameterError
from rands.procedures.fixed_precision.kn_engine import SMALL_GROUP, _kn_block
from rands.procedures.fixed_precision.constants import (gsp_eta, gsp_tail, kn_eta, kn_h2, rinott_h,
                                                       rinott_h_limit)
from rands.procedures.fixed_precision.gsp import GSP, _gsp_screen
from rands.procedures.fixed_precision.kn import KN
from rands.procedures.fixed_precision.kt import KT, kt_rounds
from rands.procedures.fixed_precision.rinott import Rinott
from rands.sampling import SerialExecutor


# --------------------------------------------------------------------------- constants
def _t_difference_quantile(p: float, nu: int) -> float:
    """1-alpha quantile of T1 - T2, T1, T2 iid t_nu (Dudewicz-Dalal h1 for k = 2)."""
    t = stats.t(nu)

    def cdf(h):
        return integrate.quad(lambda s: t.cdf(h + s) * t.pdf(s), -np.inf, np.inf, epsabs=1e-13)[0]
    return optimize.brentq(lambda h: cdf(h) - p, 0.1, 20, xtol=1e-10)


@pytest.mark.parametrize("nu", [9, 19])
def test_rinott_h_k2_equals_t_difference_quantile(nu):
    # For k = 2, Z sqrt(nu (1/X1 + 1/X2)) has the law of T1 - T2 (Dudewicz & Dalal 1975 h1,
    # tabulated in Law & Kelton; e.g. n0 = 20, 1-alpha = 0.95 gives 2.45).
    h = rinott_h(2, 0.95, nu)
    assert h == pytest.approx(_t_difference_quantile(0.95, nu), abs=1e-6)
    if nu == 19:
        assert round(h, 2) == 2.45


def test_rinott_h_monte_carlo_k10():
    # h is the 1-alpha quantile of max_{i>=2} Z_i sqrt(nu (1/X_i + 1/X_1)); 400k draws give the
    # 0.95 quantile to about +-0.006 (2 se); computed value 3.8753 (k = 10, n0 = 20).
    nu, k, n = 19, 10, 400_000
    rng = np.random.default_rng(20240501)
    x1 = rng.chisquare(nu, n)
    x = rng.chisquare(nu, (n, k - 1))
    z = rng.standard_normal((n, k - 1))
    sample = (z * np.sqrt(nu * (1 / x + 1 / x1[:, None]))).max(axis=1)
    h = rinott_h(k, 0.95, nu)
    assert h == pytest.approx(3.875, abs=5e-4)
    assert abs(np.mean(sample <= h) - 0.95) < 2.5 * np.sqrt(0.95 * 0.05 / n)


def test_rinott_h_large_nu_and_k_converged():
    # no cap on nu: h decreases to the known-variance limit sqrt(2) Phi^-1((1-a)^(1/(k-1)))
    lim = rinott_h_limit(10, 0.95)
    h50, h200, h1e5 = rinott_h(10, 0.95, 50), rinott_h(10, 0.95, 200), rinott_h(10, 0.95, 1e5)
    assert h50 > h200 > h1e5 > lim
    assert h1e5 == pytest.approx(lim, abs=1e-4)
    # large k: monotone in k, quadrature converged (doubling the nodes moves h < 1e-8)
    hs = [rinott_h(k, 0.95, 19) for k in (10, 100, 10**4, 10**6)]
    assert np.all(np.diff(hs) > 0)
    assert abs(rinott_h(10**6, 0.95, 19, refine=2) - hs[-1]) < 1e-8
    assert hs[-1] > rinott_h_limit(10**6, 0.95)


def test_kn_eta_closed_form():
    # Kim & Nelson (2001): eta = 1/2 [(2 alpha/(k-1))^(-2/(n0-1)) - 1]
    assert kn_eta(10, 0.05, 20) == pytest.approx(0.5 * ((2 * 0.05 / 9) ** (-2 / 19) - 1), rel=1e-14)
    assert kn_eta(2, 0.05, 10) == pytest.approx(0.5 * (0.1 ** (-2 / 9) - 1), rel=1e-14)
    assert kn_h2(10, 0.05, 20) == pytest.approx(2 * 19 * kn_eta(10, 0.05, 20))


def test_gsp_eta_solves_equation_and_matches_monte_carlo():
    k, a1, n1 = 10, 0.025, 20
    eta = gsp_eta(k, a1, n1)
    target = 1 - (1 - a1) ** (1 / (k - 1))
    assert gsp_tail(eta, n1 - 1) == pytest.approx(target, rel=1e-8)
    assert gsp_eta(k, a1, n1, refine=2) == pytest.approx(eta, abs=1e-9)
    rng = np.random.default_rng(7)
    m = np.minimum(rng.chisquare(n1 - 1, 2_000_000), rng.chisquare(n1 - 1, 2_000_000))
    v = 2 * stats.norm.sf(eta * np.sqrt(m))
    assert abs(v.mean() - target) < 4 * v.std() / np.sqrt(v.size)
    # larger k or smaller alpha1 -> larger eta
    assert gsp_eta(1000, a1, n1) > eta and gsp_eta(k, 0.001, n1) > eta


# --------------------------------------------------------------------------- screening kernels
def _kn_block_brute(P, x1, h2, delta, r_first, r_close, new0):
    """KN stage by stage on the running sums P[t] (stage r_first + t), straight from the rule."""
    m = P.shape[1]
    alive = np.ones(m, dtype=bool)
    used = np.zeros(m, dtype=np.int64)
    s2 = np.array([[np.var(x1[i] - x1[l], ddof=1) for l in range(m)] for i in range(m)])
    for t in range(P.shape[0]):
        r = r_first + t
        if t >= new0:
            used[alive] = t + 1 - new0
        out = np.zeros(m, dtype=bool)
        for i in np.flatnonzero(alive):
            for l in np.flatnonzero(alive):
                if l != i and P[t, l] - P[t, i] > max(0.0, h2 * s2[i, l] / (2 * delta) - delta * r / 2):
                    out[i] = True
        alive &= ~out
        if alive.sum() <= 1 or r >= r_close:
            idx = np.flatnonzero(alive)
            return alive, used, True, r, int(idx[np.argmax(P[t, idx])])
    return alive, used, False, r_first + P.shape[0] - 1, -1


@pytest.mark.parametrize("m,r,n0,offset", [(12, 20, 20, 0.0), (12, 60, 20, 0.0), (SMALL_GROUP + 40, 20, 20, 0.0),
                                          (SMALL_GROUP + 40, 60, 20, 0.0), (SMALL_GROUP + 40, 20, 4, 0.0),
                                          (SMALL_GROUP + 300, 30, 10, 1e7)])
def test_kn_block_matches_brute_force(m, r, n0, offset):
    """The compiled block screening (all-pairs for small groups, candidate pairs for large
    ones, whose pair filter is float32 on the first coordinates and the norm of the rest)
    takes the decisions of the rule applied stage by stage: eliminations, the samples each
    system used, the stage the match ends and its winner; also with n0 below the filter's
    coordinates and with sums of 10^7 (a common offset)."""
    rng = np.random.default_rng(m + r + n0)
    L, delta = 40, 0.5
    common = rng.standard_normal(n0)
    x1 = 0.8 * common + rng.standard_normal((m, n0)) * rng.uniform(0.3, 2.0, (m, 1))
    c = np.ascontiguousarray(x1 - x1.mean(1, keepdims=True))
    a = (c * c).sum(1)
    h2 = kn_h2(m, 0.05, n0)
    mu = rng.normal(0, 0.4, m)
    steps = mu[None, :] + rng.standard_normal((L, m)) * 1.5
    P = np.vstack([rng.normal(0, 3 * np.sqrt(r), m)[None, :], steps]).cumsum(axis=0) + offset
    for new0, r_close in ((1, 10 ** 6), (0, 10 ** 6), (0, r + 15)):
        Q = np.ascontiguousarray(P[1 - new0:])
        want = _kn_block_brute(Q, x1, h2, delta, r, r_close, new0)
        assert 0 < want[0].sum() < m                 # the case eliminates something
        alive = np.ones(m, dtype=np.bool_)
        used = np.zeros(m, dtype=np.int64)
        done, r_end, win = np.zeros(1, np.bool_), np.zeros(1, np.int64), np.full(1, -1, np.int64)
        _kn_block(np.array([0, m]), Q, c, a, np.array([h2 / (2 * delta) / (n0 - 1)]), delta,
                  np.array([r]), np.array([r_close]), new0, alive, used, done, r_end, win)
        assert np.array_equal(alive, want[0])
        assert np.array_equal(used, want[1])
        assert (bool(done[0]), int(r_end[0])) == (want[2], want[3])
        if want[2]:
            assert int(win[0]) == want[4]


@pytest.mark.parametrize("name,params", [("kn", {}), ("kn", {"crn": True}), ("kt", {"g": 10, "n_groups": 3}),
                                         ("kt", {"g": 5, "crn": True})])
def test_lookahead_changes_cost_not_decisions(name, params):
    """Drawing L stages ahead never changes the selected system, the used sample sizes or the
    means: only the samples simulated (>= used, equal at lookahead=1)."""
    prob = rands.problems.make("mdm", k=300, delta=0.5)
    base = rands.select(prob, name, seed=5, alpha=0.05, delta=0.5, n0=10, lookahead=1, **params)
    assert base.samples_simulated == base.total_samples
    for L in (3, 32, None):
        res = rands.select(prob, name, seed=5, alpha=0.05, delta=0.5, n0=10, lookahead=L, **params)
        assert res.best == base.best
        assert np.array_equal(res.sample_sizes, base.sample_sizes)
        assert np.array_equal(res.means, base.means)
        assert res.samples_simulated >= res.total_samples
        if L == 32:
            assert res.samples_simulated > res.total_samples


def test_gsp_screen_matches_brute_force():
    rng = np.random.default_rng(3)
    k = 50
    mean, s2 = rng.normal(0, 0.5, k), rng.uniform(0.5, 2, k)
    n = rng.integers(20, 40, k).astype(float)
    n_max = n + 30
    idx = np.arange(k)
    eta, nu = 1.1, 19.0
    got = _gsp_screen(idx, mean, s2, n, n_max, eta, nu, np.ones(k, dtype=bool))
    want = np.ones(k, dtype=bool)
    for i in range(k):
        for j in range(k):
            t = 1 / (s2[i] / n[i] + s2[j] / n[j])
            tm = 1 / (s2[i] / n_max[i] + s2[j] / n_max[j])
            if i != j and t * (mean[i] - mean[j]) < -eta * np.sqrt(nu * tm):
                want[i] = False
    assert 0 < want.sum() < k
    assert np.array_equal(got, want)


# --------------------------------------------------------------------------- guarantees
def _sc(k=10, **kw):
    return rands.problems.make("slippage", k=k, delta=0.5, sigma=1.0, **kw)


def _mdm(k=10, **kw):
    return rands.problems.make("mdm", k=k, delta=0.5, sigma=1.0, **kw)


PROCS = {
    "rinott": lambda: Rinott(alpha=0.05, delta=0.5, n0=20),
    "kn": lambda: KN(alpha=0.05, delta=0.5, n0=20),
    "kn_crn": lambda: KN(alpha=0.05, delta=0.5, n0=20, crn=True),
    "kt": lambda: KT(alpha=0.05, delta=0.5, n0=20, g=3, n_groups=2),
    "kt_crn": lambda: KT(alpha=0.05, delta=0.5, n0=20, g=3, n_groups=2, crn=True),
}


# The PCS tests (alpha = 0.05): X correct selections out of n = 785 macroreplications, pass
# iff X >= 726 (conftest.pcs_design(0.95), exact binomial tails with scipy.stats.binom):
#   nominal level, PCS = 0.95: P(X < 726) = binom.cdf(725, 785, 0.95) = 0.00092  (false alarm <= 0.001)
#   a bug with PCS = 0.90:     P(X < 726) = binom.cdf(725, 785, 0.90) = 0.9902   (power >= 0.99)
# 785 is the fewest macroreplications with both; the procedures' true PCS is >= 0.95 in these
# configurations (slippage: exactly delta apart; MDM), so the false-alarm rate is at most 0.001.
PCS_N, PCS_C = 785, 726


def _assert_pcs(v, correct, pcs_test):
    assert pcs_test(0.95) == (PCS_N, PCS_C)            # the design in the comment above
    assert v.macroreps == PCS_N
    assert int(np.sum(correct)) >= PCS_C, v.row()


@pytest.mark.parametrize("config", ["sc", "mdm"])
@pytest.mark.parametrize("proc", list(PROCS))
def test_pcs_at_least_1_minus_alpha(proc, config, pcs_test):
    """PCS >= 0.95 (alpha = 0.05) by the binomial test above: passes at PCS 0.95 with
    probability 0.99908, fails at PCS 0.90 with probability 0.9902."""
    crn = proc.endswith("crn")
    prob = (_sc if config == "sc" else _mdm)(rho=0.5 if crn else 0.0)
    v = rands.validate(prob, PROCS[proc](), macroreps=PCS_N, seed=11)
    _assert_pcs(v, v.correct, pcs_test)


@pytest.mark.parametrize("config", ["sc", "mdm"])
def test_gsp_pgs(config, pcs_test):
    """PGS >= 1 - alpha1 - alpha2 = 0.95 by the binomial test above (0.99908 / 0.9902)."""
    prob = (_sc if config == "sc" else _mdm)()
    v = rands.validate(prob, GSP(alpha1=0.025, alpha2=0.025, delta=0.5, n1=20, rbar=5, beta=10),
                       macroreps=PCS_N, seed=5)
    _assert_pcs(v, v.good, pcs_test)


def test_kn_crn_saves_samples_with_positive_correlation(pcs_test):
    """Var(X_i - X_l) = 2 sigma^2 (1 - rho): with rho = 0.8 the difference variance is 5x
    smaller, and so is KN's cost; its PCS stays >= 0.95 by the binomial test above
    (785 macroreplications, >= 726 correct: 0.99908 at PCS 0.95, fails at 0.90 w.p. 0.9902)."""
    prob = rands.problems.make("slippage", k=10, delta=0.5, sigma=3.0, rho=0.8)
    ind = rands.validate(prob, KN(alpha=0.05, delta=0.5, n0=20), macroreps=60, seed=2)
    crn = rands.validate(prob, KN(alpha=0.05, delta=0.5, n0=20, crn=True), macroreps=PCS_N, seed=2)
    assert crn.mean_samples < 0.4 * ind.mean_samples
    _assert_pcs(crn, crn.correct, pcs_test)


@pytest.mark.parametrize("config", ["sc", "mdm"])
@pytest.mark.parametrize("proc", list(PROCS))
def test_pcs_1000_macroreps(proc, config):
    crn = proc.endswith("crn")
    prob = (_sc if config == "sc" else _mdm)(rho=0.5 if crn else 0.0)
    v = rands.validate(prob, PROCS[proc](), macroreps=1000, seed=101)
    assert v.pcs_ci[1] >= 0.95 and v.pcs >= 0.935, v.row()


@pytest.mark.parametrize("config", ["sc", "mdm"])
def test_gsp_pgs_1000_macroreps(config):
    prob = (_sc if config == "sc" else _mdm)()
    v = rands.validate(prob, GSP(delta=0.5, n1=20, rbar=5, beta=10), macroreps=1000, seed=101)
    assert v.pgs_ci[1] >= 0.95 and v.pgs >= 0.935, v.row()


# --------------------------------------------------------------------------- determinism and edge cases
# a fixed look-ahead keeps the block boundaries (where checkpoints fall) the same in every run;
# the adaptive default chooses blocks from measured timings (decisions are the same either way)
ALL = {
    "rinott": lambda: Rinott(delta=0.5),
    "kn": lambda: KN(delta=0.5, lookahead=3),
    "kn_crn": lambda: KN(delta=0.5, crn=True, lookahead=1),
    "gsp": lambda: GSP(delta=0.5, n1=10, rbar=3, beta=5),
    "kt": lambda: KT(delta=0.5, g=4, n_groups=3, lookahead=2),
    "kt_crn": lambda: KT(delta=0.5, g=4, n_groups=3, crn=True, lookahead=1),
}


@pytest.mark.parametrize("proc", list(ALL))
def test_same_seed_same_result(proc):
    prob = _mdm(k=23, rho=0.3)
    a = rands.select(prob, ALL[proc](), seed=(4, 2))
    b = rands.select(prob, ALL[proc](), seed=(4, 2))
    c = rands.select(prob, ALL[proc](), seed=(4, 3))
    assert a.best == b.best
    assert np.array_equal(a.sample_sizes, b.sample_sizes)
    assert np.array_equal(a.means, b.means, equal_nan=True)
    assert a.total_samples == int(a.sample_sizes.sum())
    assert not np.array_equal(a.sample_sizes, c.sample_sizes)


class ReversedExecutor(SerialExecutor):
    """Runs groups in reverse order (as an out-of-order parallel backend might)."""

    def map_groups(self, fn, tasks):
        return super().map_groups(fn, tasks[::-1])[::-1]


@pytest.mark.parametrize("crn", [False, True])
def test_kt_result_independent_of_backend_order(crn):
    prob = _sc(k=40, rho=0.4)
    a = rands.select(prob, KT(delta=0.5, g=5, n_groups=3, crn=crn), seed=9)
    b = rands.select(prob, KT(delta=0.5, g=5, n_groups=3, crn=crn), seed=9, executor=ReversedExecutor())
    assert a.best == b.best and np.array_equal(a.sample_sizes, b.sample_sizes)
    assert np.allclose(a.means, b.means, equal_nan=True)


@pytest.mark.parametrize("k,p,g", [(3, 8, 2), (7, 3, 2), (10, 10, 20), (21, 2, 20), (2, 1, 2)])
def test_kt_edge_cases(k, p, g):
    # k < p, partial groups, one system per partition, survivors < processors
    r = rands.select(_sc(k=k), KT(delta=0.5, g=g, n_groups=p), seed=1)
    assert 0 <= r.best < k
    assert r.extras["partitions"] == min(p, k)
    sizes = np.bincount(np.arange(k) % min(p, k))
    assert r.extras["rounds"] == max(kt_rounds(int(s), g) for s in sizes)
    assert r.extras["final_alpha"] == pytest.approx(0.05 / 2 ** (r.extras["rounds"] + 1))


class RecordingSlippage(rands.problems.NormalProblem):
    """Normal systems that record every block of (system, replication) pairs asked for."""

    def __init__(self, k):
        super().__init__(np.r_[0.5, np.zeros(k - 1)], 3.0)
        self.calls = []

    def simulate(self, systems, reps, streams):
        self.calls.append((np.array(systems), np.array(reps)))
        return super().simulate(systems, reps, streams)


@pytest.mark.parametrize("crn", [False, True])
def test_kt_match_replication_indices(crn):
    # a KT match among systems whose replication counters differ (as in later rounds):
    # under CRN every block uses common replications starting at the largest counter;
    # without CRN each system continues its own sequence (fresh, independent samples)
    from rands.procedures.fixed_precision.kn_engine import kn_match_chunk
    from rands.sampling import SamplingContext
    prob = RecordingSlippage(3)
    start = np.array([5, 40, 17])
    ctx = SamplingContext(prob, rands.Streams(0, crn=crn), next_rep=start.copy())
    kn_match_chunk(ctx, sizes=[3], alpha=0.05, delta=0.5, n0=20, crn=crn, lookahead=None)
    first_sys, first_reps = prob.calls[0]
    assert len(prob.calls) > 1
    for sys_, reps in prob.calls:
        per = reps.reshape(len(np.unique(sys_)), -1)
        if crn:
            assert (per == per[0]).all()
    if crn:
        assert first_reps.reshape(3, -1)[:, 0].tolist() == [40, 40, 40]
    else:
        assert first_reps.reshape(3, -1)[:, 0].tolist() == start.tolist()


def test_gsp_timing_stage_counts_samples():
    prob = _sc(k=6)
    r = rands.select(prob, GSP(delta=0.5, n1=10, rbar=2, beta=5, n0=3), seed=0)
    assert r.trace[0]["stage"] == "gsp_stage0"
    assert r.total_samples >= 6 * (3 + 10)


class FakeCheckpointer:
    """In-memory checkpointer obeying the contract; can interrupt at the n-th boundary.

    States are copied the way an NPZ round trip returns them (scalars as 0-d arrays)."""

    def __init__(self, stop_at=None):
        self.stop_at, self.count, self.saved, self.previous_wall_time = stop_at, 0, None, 0.0

    def restore(self, ctx):
        if self.saved is None:
            return None
        stats_, state = self.saved
        ctx.restore_stats(stats_.copy())
        return {k: np.array(v) for k, v in state.items()}

    def at_boundary(self, ctx, state, force=False):
        self.count += 1
        self.saved = (ctx.stats.copy(), {k: np.array(v, copy=True) for k, v in state.items()})
        if self.stop_at is not None and self.count == self.stop_at:
            raise Interrupted(None)


@pytest.mark.parametrize("proc", list(ALL))
def test_checkpoint_resume_identical(proc):
    prob = rands.problems.make("mdm", k=17, delta=0.5, sigma=2.0, rho=0.3)
    full = rands.select(prob, ALL[proc](), seed=21)
    probe = FakeCheckpointer()
    rands.select(prob, ALL[proc](), seed=21, checkpoint=probe)
    assert probe.count >= 2
    for stop in sorted({1, probe.count // 2, probe.count - 1} - {0}):
        cp = FakeCheckpointer(stop_at=stop)
        with pytest.raises(Interrupted):
            rands.select(prob, ALL[proc](), seed=21, checkpoint=cp)
        cp.stop_at = None
        res = rands.select(prob, ALL[proc](), seed=21, checkpoint=cp)
        assert res.best == full.best
        assert np.array_equal(res.sample_sizes, full.sample_sizes)
        assert np.allclose(res.means, full.means, equal_nan=True, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls,kw,match", [
    (Rinott, {"crn": True}, "common random numbers"),
    (GSP, {"crn": True}, "common random numbers"),
    (KN, {"alpha": 0.0}, "alpha must be in"),
    (KN, {"alpha": 1.0}, "alpha must be in"),
    (Rinott, {"delta": 0.0}, "delta must be in"),
    (KT, {"delta": -1}, "delta must be in"),
    (KN, {"n0": 1}, "n0 must be >= 2"),
    (KN, {"n0": 2.5}, "n0"),
    (KT, {"g": 1}, "procedure 'kt': g must be >= 2, got 1"),
    (KT, {"n_groups": 0}, "n_groups must be >= 1"),
    (GSP, {"n1": 1}, "n1 must be >= 2"),
    (GSP, {"alpha1": 0.6, "alpha2": 0.5}, "alpha1 \\+ alpha2"),
    (GSP, {"beta": 0}, "beta must be in"),
    (GSP, {"rbar": -1}, r"rbar must be in \[0, 1000000\], got -1"),
])
def test_invalid_parameters(cls, kw, match):
    with pytest.raises(ParameterError, match=match):
        cls(**kw)


def test_registry_names_and_n0_two():
    r = rands.select(_sc(k=5), "kn", seed=0, delta=0.5, n0=2)
    assert 0 <= r.best < 5
    r = rands.select(_sc(k=5), "rinott", seed=0, delta=0.5, n0=2)
    assert r.extras["h"] > 10
    with pytest.raises(ParameterError, match="unknown parameter"):
        rands.select(_sc(), "kt", seed=0, p=4)
