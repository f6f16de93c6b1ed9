"""Forward-gradient estimators, allocators and the FLOPS pipeline (applications/flops)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import rands  # noqa: E402
from rands.applications.flops import (ForwardGradient, GaussianAllocator, LayerwiseLR,  # noqa: E402
                                      QueryStats, SPSA, TwoStageNeyman, Uniform, allocate,
                                      allocation_variance, largest_remainder, make_allocator,
                                      proportional_with_floor)
from rands.applications.flops.models import TinyViT  # noqa: E402
from rands.errors import ParameterError  # noqa: E402

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


# ---------------------------------------------------------------- helpers
def _tiny_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 3)).double()


def _batch(b=3, d=4, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=torch.float64), torch.randint(0, classes, (b,), generator=g)


def _closure(model, x, y):
    def closure(rows):
        rows = torch.arange(x.shape[0]) if rows is None else rows
        return nn.functional.cross_entropy(model(x[rows]), y[rows], reduction="none")
    return closure


def _exact(model, x, y, targets):
    loss = nn.functional.cross_entropy(model(x), y)
    return [g.detach() for g in torch.autograd.grad(loss, targets)]


# Power of the scale checks. A check passes when the mean projection r = <ghat, g>/||g||^2 of the draws
# on the exact gradient g is within C = 3.5 standard errors of 1, and it also requires se <= SE_MAX =
# 0.05 / (2 C 1.05) = 0.0068. Then, whenever the unbiased estimator passes (|r - 1| < C se), the same draws
# mis-scaled by f in {0.95, 1.05, 1.2} fail (|f r - 1| >= 0.05 - 1.05 C se >= 1.05 C se = C se(f draws)),
# which is asserted; and an estimator whose mean is off by 5% passes with probability at most
# Phi(C - 0.05 / (1.05 se)) <= Phi(-C) = 2.3e-4 (by 20%: Phi(3.5 - 0.2/(1.2 * 0.0068)) ~ 1e-40).
SCALE_C = 3.5
SE_MAX = 0.05 / (2 * SCALE_C * 1.05)


def _check_scale(proj, what=""):
    """proj: one projection <ghat, g>/||g||^2 per independent draw; the power statement above."""
    proj = np.asarray(proj, float)
    ratio, se = float(proj.mean()), float(proj.std(ddof=1) / math.sqrt(proj.size))
    assert se <= SE_MAX, f"{what} s.e. {se:.4f} > {SE_MAX:.4f}: too few draws to detect a 5% mis-scaling"
    assert abs(ratio - 1) < SCALE_C * se, f"{what} projection ratio {ratio:.4f} +- {se:.4f}"
    for f in (0.95, 1.05, 1.2):  # the same draws mis-scaled by 5% or 20% fail the check
        assert abs(f * ratio - 1) >= SCALE_C * f * se, (what, f, ratio, se)
    return ratio, se


def _check_unbiased(est, model, x, y, counts, reps, zmax=4.5):
    """Mean of `reps` independent estimates vs backprop: every coordinate within zmax s.e., and the
    projection on the exact gradient 1 within 3.5 s.e. with s.e. <= 0.0068 (power: see SCALE_C)."""
    closure = _closure(model, x, y)
    gen = torch.Generator().manual_seed(123)
    clean = closure(None).detach() if getattr(est, "needs_clean", False) else None
    draws = []
    for _ in range(reps):
        st = est.query(closure, torch.tensor(counts), gen, clean=clean)
        draws.append(torch.cat([g.reshape(-1) for g in est.gradient(st)]))
    draws = torch.stack(draws)
    exact = torch.cat([g.reshape(-1) for g in _exact(model, x, y, est.targets())])
    se = draws.std(0) / math.sqrt(reps)
    z = (draws.mean(0) - exact) / se
    assert torch.isfinite(z).all()
    assert z.abs().max() < zmax, f"max |z| = {z.abs().max():.2f}"
    _check_scale((draws @ exact / (exact @ exact)).numpy(), type(est).__name__)
    return draws


# ---------------------------------------------------------------- estimators: unbiasedness
@pytest.mark.parametrize("antithetic,baseline", [(True, "none"), (True, "clean"), (False, "clean")])
def test_lr_estimator_mean_matches_backprop_mlp(antithetic, baseline):
    model = _tiny_mlp()
    x, y = _batch()
    est = LayerwiseLR(model, sigma=1e-3, antithetic=antithetic, baseline=baseline)
    _check_unbiased(est, model, x, y, [40, 80, 120], reps=600)


def test_lr_estimator_mean_matches_backprop_vit_tokens():
    torch.manual_seed(0)
    model = TinyViT(dim=8, depth=1, heads=2, mlp=8, classes=3).double()
    x, y = _batch(b=2, d=64, classes=3)
    est = LayerwiseLR(model, sigma=1e-3)
    _check_unbiased(est, model, x, y, [240, 120], reps=600)


def test_study_vit_m_size_and_coverage():
    from rands.applications.flops.models import build_model
    net = build_model("vit-m")
    linear = sum(m.weight.numel() + m.bias.numel() for m in net.modules() if isinstance(m, nn.Linear))
    assert 5e5 <= sum(p.numel() for p in net.parameters()) <= 2e6  # the 0.5-2M range
    covered = sum(t.numel() for t in LayerwiseLR(net).targets())
    assert covered == linear > 0.99 * sum(p.numel() for p in net.parameters())
    with pytest.raises(ParameterError, match="vit-m"):
        build_model("vit-l")


def test_spsa_mean_matches_backprop():
    model = _tiny_mlp()
    x, y = _batch()
    est = SPSA(model.parameters(), eps=1e-4)
    _check_unbiased(est, model, x, y, [8, 6, 7], reps=6400)


def test_spsa_restores_parameters_exactly():
    model = _tiny_mlp()
    x, y = _batch()
    before = [p.detach().clone() for p in model.parameters()]
    SPSA(model.parameters()).query(_closure(model, x, y), torch.tensor([2, 1, 3]), torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_point_variance_estimate_is_unbiased():
    """sum/sumsq bookkeeping: per-point unit variance vs the variance of the unit draws."""
    model = _tiny_mlp()
    x, y = _batch()
    est = LayerwiseLR(model, sigma=1e-3)
    closure = _closure(model, x, y)
    gen = torch.Generator().manual_seed(5)
    big = est.query(closure, torch.tensor([4000, 4000, 4000]), gen)
    v_big = big.point_variances()
    small = [est.query(closure, torch.tensor([3, 3, 3]), gen).point_variances() for _ in range(400)]
    small = torch.stack(small)
    z = (small.mean(0) - v_big) / (small.std(0) / math.sqrt(small.shape[0]))
    assert z.abs().max() < 4.0
    assert torch.allclose(small.mean(0), v_big, rtol=0.25)


# ---------------------------------------------------------------- integer allocation
def test_allocations_sum_to_budget_and_respect_floors():
    rng = np.random.default_rng(0)
    for _ in range(500):
        b = int(rng.integers(1, 40))
        floor = int(rng.integers(0, 4))
        total = floor * b + int(rng.integers(0, 200))
        w = rng.exponential(size=b) * (rng.random(b) < 0.8)
        q = allocate(w, total, floor)
        assert q.sum() == total and (q >= floor).all() and q.dtype == np.int64
        cont = proportional_with_floor(w, total, floor)
        assert np.all(np.abs(q - cont) < 1 + 1e-9)


def test_proportional_with_floor_is_the_kkt_optimum():
    """min sum v/q s.t. sum q = Q, q >= floor: compare with a fine numerical search (scipy)."""
    from scipy.optimize import minimize
    rng = np.random.default_rng(1)
    for _ in range(5):
        v = rng.exponential(size=6) ** 3
        total, floor = 30.0, 2.0
        q = proportional_with_floor(np.sqrt(v), total, floor)
        res = minimize(lambda z: np.sum(v / z), np.full(6, total / 6), method="SLSQP",
                       bounds=[(floor, None)] * 6, constraints=[{"type": "eq", "fun": lambda z: z.sum() - total}])
        assert np.sum(v / q) <= res.fun + 1e-6 * res.fun


def test_largest_remainder_is_hamilton():
    assert largest_remainder(np.array([1.5, 1.2, 2.3]), 5).tolist() == [2, 1, 2]
    with pytest.raises(ParameterError, match="floor"):
        allocate(np.ones(4), 3, 1)


# ---------------------------------------------------------------- Neyman on a constructed batch
class _KnownVariance:
    """Synthetic estimator: point i's unit draw is g_i + sqrt(v_i/d) * N(0, I_d)."""

    unit = 1
    needs_clean = False

    def __init__(self, v, d=4, seed=0):
        self.v = torch.as_tensor(v, dtype=torch.float64)
        self.d = d
        self.g = torch.randn(len(v), d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.param = torch.zeros(d, dtype=torch.float64, requires_grad=True)

    def targets(self):
        return [self.param]

    def query(self, closure, counts, gen, clean=None):
        counts = torch.as_tensor(counts)
        b = counts.shape[0]
        point = torch.repeat_interleave(torch.arange(b), counts)
        draws = self.g[point] + (self.v[point] / self.d).sqrt()[:, None] * torch.randn(
            point.shape[0], self.d, generator=gen, dtype=torch.float64)
        sums = torch.zeros(b, self.d, dtype=torch.float64).index_add_(0, point, draws)
        sumsq = torch.zeros(b, dtype=torch.float64).index_add_(0, point, draws.pow(2).sum(1))
        return QueryStats([sums], sumsq, counts.clone(), int(point.shape[0]), torch.zeros(b, dtype=torch.float64))

    def gradient(self, stats):
        return stats.gradient()


def _mse(opt, est, b, reps):
    target = est.g.mean(0)
    errs = [((opt.estimate(lambda rows: None, b)[0][0] - target) ** 2).sum().item() for _ in range(reps)]
    return float(np.mean(errs)), float(np.std(errs) / math.sqrt(reps))


def test_neyman_variance_matches_closed_form_and_beats_uniform():
    v = np.array([0.05] * 12 + [1.0] * 3 + [20.0])          # heterogeneous per-point variances
    b, budget = v.size, 160
    est = _KnownVariance(v)
    oracle = allocate(np.sqrt(v), budget, 1)
    uniform = allocate(np.ones(b), budget, 1)
    closed_oracle = allocation_variance(v, oracle)
    closed_uniform = allocation_variance(v, uniform)
    # no floor binds here: the closed form is (sum sqrt v)^2 / (B^2 Q)
    assert closed_oracle == pytest.approx(np.sum(np.sqrt(v)) ** 2 / (b * b * budget), rel=0.02)
    assert closed_uniform / closed_oracle > 2.0

    class Fixed(Uniform):
        def __init__(self, counts):
            self.counts = counts

        def spend(self, units, b, query, clean, gen):
            return query(self.counts)

    gen = torch.Generator().manual_seed(7)
    p = [est.param]
    mse_o, se_o = _mse(ForwardGradient(p, estimator=est, allocator=Fixed(oracle), queries=budget, generator=gen), est, b, 2000)
    mse_u, se_u = _mse(ForwardGradient(p, estimator=est, allocator=Uniform(), queries=budget, generator=gen), est, b, 2000)
    assert abs(mse_o - closed_oracle) < 4 * se_o
    assert abs(mse_u - closed_uniform) < 4 * se_u
    # two-stage Neyman (estimated sds from 2 pilot units) beats uniform at the same budget
    mse_n, se_n = _mse(ForwardGradient(p, estimator=est, allocator=TwoStageNeyman(pilot=2), queries=budget,
                                       generator=gen), est, b, 2000)
    assert mse_n + 4 * se_n < mse_u and mse_n > closed_oracle - 4 * se_o


def _estimate_draws(allocator, b=800, reps=300, units_per_point=6, seed=9):
    """`reps` ForwardGradient.estimate draws on the tiny MLP (layer-wise LR: products of Gaussian noise and
    losses, not Gaussian draws) and the batch-mean backprop gradient g: ((reps, dim) draws, g)."""
    model = _tiny_mlp()
    x, y = _batch(b=b)
    closure = _closure(model, x, y)
    est = LayerwiseLR(model, sigma=1e-3)
    exact = torch.cat([g.reshape(-1) for g in _exact(model, x, y, est.targets())])
    opt = ForwardGradient(model.parameters(), estimator=est, allocator=allocator, queries=2 * units_per_point * b,
                          generator=torch.Generator().manual_seed(seed))
    draws = torch.stack([torch.cat([g.reshape(-1) for g in opt.estimate(closure, b)[0]]) for _ in range(reps)])
    return draws, exact


def _projection_ratios(allocator, **kw):
    """Mean and s.e. of the per-step projections <ghat, g>/||g||^2 (1 = unbiased along g)."""
    draws, exact = _estimate_draws(allocator, **kw)
    pr = (draws @ exact / (exact @ exact)).numpy()
    return float(pr.mean()), float(pr.std(ddof=1) / math.sqrt(len(pr)))


def test_two_stage_neyman_uses_pilots_only_to_allocate_and_is_unbiased():
    """Pilot-free final estimate on a non-Gaussian model: every coordinate of the mean within 4.5 s.e. of the
    exact gradient, and the projection on it 1 within 3.5 s.e. with s.e. <= 0.0068, so that 5% and 20%
    mis-scalings fail (power: SCALE_C above)."""
    draws, exact = _estimate_draws(TwoStageNeyman(pilot=2), b=1600, reps=400)
    z = (draws.mean(0) - exact) / (draws.std(0) / math.sqrt(draws.shape[0]))
    assert z.abs().max() < 4.5, f"max |z| = {z.abs().max():.2f}"
    _check_scale((draws @ exact / (exact @ exact)).numpy(), "TwoStageNeyman")


@pytest.mark.parametrize("name,kw", [("uniform", dict(b=1600, reps=250)), ("loss", dict(b=1600, reps=250)),
                                     ("bernoulli", dict(b=1600, reps=250)),
                                     ("gaussian", dict(b=100, reps=600, units_per_point=24))])
def test_pilot_free_allocators_are_unbiased(name, kw):
    """Allocations from clean losses (and the Gaussian allocator's own draws) are independent of the query
    noise, so ForwardGradient's estimate stays unbiased: every coordinate within 4.5 s.e., and the scale
    check with power against 5% / 20% mis-scaling (SCALE_C). The Gaussian allocator runs on a smaller batch
    (its RBF covariance is B x B) with more units per point."""
    draws, exact = _estimate_draws(make_allocator(name), **kw)
    z = (draws.mean(0) - exact) / (draws.std(0) / math.sqrt(draws.shape[0]))
    assert z.abs().max() < 4.5, f"max |z| = {z.abs().max():.2f}"
    _check_scale((draws @ exact / (exact @ exact)).numpy(), name)


def test_two_stage_neyman_reusing_pilots_is_biased():
    """The earlier behaviour (pilots pooled into the estimate) shrinks the gradient by ~10% here."""
    r, se = _projection_ratios(TwoStageNeyman(pilot=2, reuse_pilots=True), reps=100)
    assert r < 0.95 and (1 - r) / se > 5, (r, se)


def test_gaussian_allocator_learns_towards_neyman_on_constructed_batch():
    """Per-point sd proportional to the clean loss: the learned exponent beta should move to ~1."""
    b = 16
    loss = torch.linspace(0.1, 3.0, b, dtype=torch.float64)
    est = _KnownVariance((loss ** 2).numpy())
    alloc = GaussianAllocator(lr=0.05, floor=2, moment="variance")
    opt = ForwardGradient([est.param], estimator=est, allocator=alloc, queries=b + 8 * b,
                          generator=torch.Generator().manual_seed(3))

    def closure(rows):
        return loss if rows is None else loss[rows]
    for _ in range(300):
        opt.estimate(closure, b)
    beta, w, s, lam = alloc.params()
    assert beta > 0.6 and w < 0.4
    counts = alloc.expected_counts(8 * b, loss)
    learned = allocation_variance(est.v.numpy(), counts)
    oracle = allocation_variance(est.v.numpy(), proportional_with_floor(est.v.sqrt().numpy(), 8 * b, 2))
    uniform = allocation_variance(est.v.numpy(), np.full(b, 8.0))
    assert learned < 1.1 * oracle < uniform


# ---------------------------------------------------------------- optimizer
@pytest.mark.parametrize("name,params", [("uniform", {}), ("loss", {}), ("neyman", {}),
                                         ("neyman", {"pilot": 1, "moment": "second"}), ("gaussian", {}),
                                         ("gaussian", {"floor": 2, "moment": "variance"}), ("bernoulli", {})])
def test_optimizer_spends_budget_and_respects_floors(name, params):
    model = _tiny_mlp()
    x, y = _batch(b=8)
    alloc = make_allocator(name, **params)
    opt = ForwardGradient(model.parameters(), estimator=LayerwiseLR(model), allocator=alloc, queries=8 * 8,
                          lr=0.01, base="sgd")
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        opt.step(_closure(model, x, y), batch_size=8)
        counts = opt.last["counts"]
        clean = 8 if alloc.needs_clean else 0
        assert (counts >= alloc.floor).all()
        assert clean + 2 * counts.sum() == opt.last["passes"] <= 64
        assert 64 - opt.last["passes"] < 2               # at most one pass left over by pairing
    assert opt.forward_passes == 3 * opt.last["passes"]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_optimizer_state_dict_resumes_identically(base):
    import copy
    x, y = _batch(b=8)

    def build(model):
        return ForwardGradient(model.parameters(), estimator=LayerwiseLR(model), allocator=GaussianAllocator(),
                               queries=64, lr=0.01, base=base, momentum=0.9 if base == "sgd" else 0.0,
                               generator=torch.Generator().manual_seed(4))
    a = _tiny_mlp()
    opt_a = build(a)
    for _ in range(2):
        opt_a.step(_closure(a, x, y), batch_size=8)
    saved_model, saved_opt = copy.deepcopy(a.state_dict()), copy.deepcopy(opt_a.state_dict())
    for _ in range(2):
        opt_a.step(_closure(a, x, y), batch_size=8)
    b = _tiny_mlp()
    b.load_state_dict(saved_model)
    opt_b = build(b)
    opt_b.load_state_dict(saved_opt)
    for _ in range(2):
        opt_b.step(_closure(b, x, y), batch_size=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert opt_a.forward_passes == opt_b.forward_passes


def test_moment_choice_is_validated():
    with pytest.raises(ParameterError, match="pilot >= 2"):
        TwoStageNeyman(pilot=1)
    with pytest.raises(ParameterError, match="moment"):
        GaussianAllocator(moment="third")


def test_optimizer_refuses_a_budget_below_the_floors():
    model = _tiny_mlp()
    with pytest.raises(ParameterError, match="queries"):
        opt = ForwardGradient(model.parameters(), estimator=LayerwiseLR(model), allocator=TwoStageNeyman(),
                              queries=20)
        x, y = _batch(b=8)
        opt.step(_closure(model, x, y), batch_size=8)


# ---------------------------------------------------------------- pipeline smoke test (CI)
def test_pipeline_smoke_select_with_crn():
    from rands.applications.flops import FlopsProblem
    from rands.streams import Streams
    settings = [{"allocator": "uniform", "queries_per_point": 4},
                {"allocator": "loss", "queries_per_point": 4},
                {"allocator": "uniform", "queries_per_point": 4}]
    prob = FlopsProblem(settings, steps=20)
    s = Streams(11, crn=True)
    out = prob.simulate(np.array([0, 1, 2, 0]), np.array([0, 0, 0, 1]), s)
    assert out[0] == out[2]                 # CRN: identical settings, same replication -> same run
    assert 0.3 < out[0] < 1.0 and out[0] != out[3]
    again = prob.simulate(np.array([2]), np.array([0]), s)
    assert again[0] == out[0]
    r = rands.select(prob, "equal", seed=3, budget=6, crn=True)
    assert r.best in (0, 1, 2) and r.total_samples == 6
    assert prob.label(1) == "lr/loss/q4"
    assert "flops" in rands.problems.names()
