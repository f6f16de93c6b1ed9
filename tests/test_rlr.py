"""RLR estimator core: sampler, coverage check, unbiasedness vs full backprop, truncation bias."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from rands.errors import ParameterError  # noqa: E402
from rands.applications.rlr import (FO, HO, LR, ZO, DDIMSchedule, NoiseBank, RLRPlan, StepNorms,  # noqa: E402
                                    check_coverage, estimate_gradient, gaussian_logprob, h_from_budget,
                                    linear_alphas_cumprod, make_estimator, profile_step_memory, sample_chain)
from rands.applications.rlr.models import MLPDenoiser  # noqa: E402
from rands.applications.rlr.rewards import QuadraticReward  # noqa: E402

T = 4
D = 2


def tiny():
    torch.manual_seed(0)
    model = MLPDenoiser(dim=D, hidden=16, temb=8, depth=1).double()
    # gentle schedule (alpha_bar_T ~ 0.35) keeps the tiny chain well conditioned
    sched = DDIMSchedule.from_alphas(linear_alphas_cumprod(40, 1e-3, 0.05), T, eta=1.0)
    reward = QuadraticReward(torch.tensor([1.0, -0.5], dtype=torch.float64))
    return model, sched, reward


@pytest.fixture(scope="module")
def truth():
    """Full-backprop gradient over 2e5 chains (its Monte Carlo error is included in the z-tests)."""
    model, sched, reward = tiny()
    g = torch.Generator().manual_seed(123)
    gs = []
    for _ in range(10):
        nb = NoiseBank.draw(T, 20000, (D,), g, dtype=torch.float64)
        gr, _ = estimate_gradient(model, sched, nb, reward, make_estimator("full_bp"), rng=np.random.default_rng(0))
        gs.append(gr.numpy())
    gs = np.array(gs)
    return gs.mean(0), gs.std(0, ddof=1) / math.sqrt(len(gs))


def replicate(name, reps, seed, **kw):
    """reps gradient estimates (batches of 16 chains), vmapped over replications sharing a strategy map."""
    from rands.applications.rlr.estimator import replicated_gradients
    model, sched, reward = tiny()
    est = make_estimator(name, **kw)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    if kw.get("j") == "softmax":  # learn the running per-step norms, then j ~ frozen softmax
        for _ in range(30):
            estimate_gradient(model, sched, NoiseBank.draw(T, 16, (D,), g, dtype=torch.float64), reward, est, rng=rng)
        assert est.plan.norms.seen.sum() == 30
    xT = torch.randn(reps, 16, D, generator=g, dtype=torch.float64)
    eps = torch.randn(T, reps, 16, D, generator=g, dtype=torch.float64)
    maps = [tuple(est.plan.sample(rng, T)) for _ in range(reps)]
    out = np.empty((reps, sum(p.numel() for p in model.parameters())))
    for key in set(maps):
        idx = [i for i, m in enumerate(maps) if m == key]
        V, _ = replicated_gradients(model, sched, reward, est, xT[idx], eps[:, idx], list(key))
        out[idx] = V.numpy()
    return out


def zscores(samples, truth):
    m, tse = truth
    se = np.sqrt(samples.var(0, ddof=1) / samples.shape[0] + tse ** 2)
    return (samples.mean(0) - m) / se


# ---- sampler ---------------------------------------------------------------------------------

def test_ddim_step_closed_form_and_logprob():
    model, sched, _ = tiny()
    g = torch.Generator().manual_seed(1)
    nb = NoiseBank.draw(T, 5, (D,), g, dtype=torch.float64)
    traj = sample_chain(model, sched, nb)
    x = nb.x_T
    for t in range(T, 0, -1):
        a, ap, s = sched.a[t - 1], sched.a_prev[t - 1], sched.sigma[t - 1]
        eps = model(x, torch.full((5,), int(sched.timesteps[t - 1])))
        x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        x = math.sqrt(ap) * x0 + math.sqrt(1 - ap - s * s) * eps + s * nb.eps[t - 1]
        assert torch.allclose(traj.xs[t - 1], x, atol=1e-12)
        assert s == pytest.approx(1.0 * math.sqrt((1 - ap) / (1 - a) * (1 - a / ap)))
    m = torch.zeros(3, 4, dtype=torch.float64)
    xx = torch.randn(3, 4, generator=g, dtype=torch.float64)
    ref = torch.distributions.Normal(m, 0.3).log_prob(xx).sum(1)
    assert torch.allclose(gaussian_logprob(xx, m, 0.3), ref)
    assert torch.allclose(gaussian_logprob(xx, m, 0.3, "mean"), ref / 4)
    with pytest.raises(ParameterError):
        gaussian_logprob(xx, m, 0.0)


def test_noise_bank_from_numpy_order_and_crn():
    vals = np.arange(2 * 3 * (T + 1), dtype=np.float64).reshape(2, -1)
    nb = NoiseBank.from_numpy(vals, T, (3,))
    assert nb.x_T[1].tolist() == vals[1, :3].tolist()
    # columns after x_T hold steps T, T-1, ..., 1 in generation order
    assert nb.eps[T - 1, 0].tolist() == vals[0, 3:6].tolist()
    assert nb.eps[0, 0].tolist() == vals[0, -3:].tolist()
    # common random numbers: two estimators on the same bank see the same chain
    model, sched, reward = tiny()
    g = torch.Generator().manual_seed(5)
    bank = NoiseBank.draw(T, 4, (D,), g, dtype=torch.float64)
    _, i1 = make_estimator("ddpo").surrogate(model, sched, bank, reward, rng=np.random.default_rng(0))
    _, i2 = make_estimator("rlr").surrogate(model, sched, bank, reward, rng=np.random.default_rng(1))
    assert torch.equal(i1["traj"].x0, i2["traj"].x0)


# ---- coverage --------------------------------------------------------------------------------

def test_coverage_certifies_unbiased_maps():
    _, sched, _ = tiny()
    for name, kw in [("full_bp", {}), ("ddpo", {}), ("rlr", {"h": 2}), ("rlr", {"h": 1}), ("hybrid_bp_2", {}),
                     ("rlr", {"h": 2, "band": (2, 3)})]:
        cov = make_estimator(name, **kw).coverage(sched)
        assert cov.unbiased, (name, kw, cov.describe())
        assert (cov.counts == 1).all()
    zo = make_estimator("rlr", h=2, fill="zo").coverage(sched)
    assert zo.unbiased and zo.smoothed and "smoothed" in zo.describe()


def test_coverage_flags_truncation_and_double_count():
    _, sched, _ = tiny()
    cov = make_estimator("draft_1").coverage(sched)
    assert not cov.unbiased and cov.missing == [2, 3, 4]
    cov = make_estimator("alignprop_rand").coverage(sched)
    assert not cov.unbiased and cov.missing == [2, 3, 4] and cov.counts.shape[0] == T
    cov = make_estimator("rlr_code", n=2).coverage(sched)
    assert not cov.unbiased
    # FO over the last two steps plus a likelihood ratio at step 2: step 2 is counted twice
    double = [FO(2), LR(2), LR(3), LR(4)]
    cov = check_coverage(double, T)
    assert cov.doubled == [2] and not cov.missing and not cov.unbiased
    with pytest.raises(ParameterError, match="double count"):
        check_coverage(double, T, require=True)
    # an HO sub-chain overlapping an LR step
    with pytest.raises(ParameterError, match=r"steps \[3\]"):
        check_coverage([FO(1), HO(2, 2), LR(3), LR(4)], T, require=True)
    # a likelihood ratio at a noiseless step (sigma = 0) is invalid
    cov = check_coverage([LR(1), LR(2), LR(3), LR(4)], T, sigma=[0.0, 1, 1, 1])
    assert cov.noiseless_lr == [1] and not cov.unbiased
    with pytest.raises(ParameterError):
        check_coverage([HO(4, 2)], T)


def test_h_from_budget_paper_numbers_and_profile():
    # paper §3.3: B_h = 8 GB, B_z = 0.24 GB, T = 50: B = 30 -> 2, B = 40 -> 3
    assert h_from_budget(30, 8, 0.24, 50) == 2
    assert h_from_budget(40, 8, 0.24, 50) == 3
    assert h_from_budget(400, 8, 0.24, 50, var_ho=1.0, var_zo=2.0) == 49  # T V_z / (2 (V_z - V_h)) - 1
    with pytest.raises(ParameterError, match="too small"):
        h_from_budget(10, 8, 0.24, 50)
    model, sched, _ = tiny()
    mem = profile_step_memory(model, sched, (D,))
    assert mem["mem_ho"] > 0 and mem["mem_zo"] == 8 * sum(p.numel() for p in model.parameters())


def test_softmax_j_follows_running_norms():
    norms = StepNorms(10)
    plan = RLRPlan(2, j="softmax", norms=norms, temperature=1.0)
    for j, v in [(2, 3.0), (5, 1.0)]:
        norms.observe(j, v)
    p = plan.probabilities(10)
    js = plan.starts(10)
    assert js.tolist() == list(range(2, 10))
    assert p[js.tolist().index(2)] / p[js.tolist().index(3)] == pytest.approx(math.exp(2.0))
    assert p.sum() == pytest.approx(1.0)
    band = RLRPlan(2, band=(4, 6))
    assert band.starts(10).tolist() == [4, 5, 6]
    rng = np.random.default_rng(0)
    assert all(4 <= band.sample(rng, 10)[1].j <= 6 for _ in range(20))


# ---- unbiasedness ----------------------------------------------------------------------------

Z_CRIT = 4.0  # Bonferroni over ~100 coordinates at family-wise level ~0.6 %


@pytest.mark.parametrize("name,kw", [("ddpo", {}), ("rlr", {"h": 2}), ("rlr", {"h": 2, "j": "softmax"}),
                                     ("hybrid_bp_2", {})])
def test_unbiased_estimators_match_full_backprop(truth, name, kw):
    samples = replicate(name, 600, seed=7, **kw)
    z = zscores(samples, truth)
    assert np.abs(z).max() < Z_CRIT, (name, kw, np.abs(z).max())
    rel = np.linalg.norm(samples.mean(0) - truth[0]) / np.linalg.norm(truth[0])
    assert rel < 0.5


def test_truncated_backprop_is_measurably_biased(truth):
    samples = replicate("draft_1", 300, seed=7)
    z = zscores(samples, truth)
    rel = np.linalg.norm(samples.mean(0) - truth[0]) / np.linalg.norm(truth[0])
    assert np.abs(z).max() > 20 and rel > 0.3, (np.abs(z).max(), rel)


def test_ppo_first_step_equals_mean_reduced_reinforce():
    model, sched, reward = tiny()
    g = torch.Generator().manual_seed(3)
    bank = NoiseBank.draw(T, 8, (D,), g, dtype=torch.float64)
    ppo = make_estimator("ddpo_ppo", baseline="loo")
    rf = make_estimator("ddpo", reduce="sum")
    g1, _ = estimate_gradient(model, sched, bank, reward, ppo, rng=np.random.default_rng(0))
    g2, _ = estimate_gradient(model, sched, bank, reward, rf, rng=np.random.default_rng(0))
    # at theta = theta_old the clip is inactive and the mean log-prob divides the gradient by D
    assert torch.allclose(g1 * D, g2, rtol=1e-8, atol=1e-10)


def test_zo_fill_runs_and_is_finite():
    model, sched, reward = tiny()
    g = torch.Generator().manual_seed(4)
    bank = NoiseBank.draw(T, 4, (D,), g, dtype=torch.float64)
    est = make_estimator("rlr", h=2, fill="zo", zo_sigma=0.05)
    gr, info = estimate_gradient(model, sched, bank, reward, est, rng=np.random.default_rng(0), generator=g)
    assert torch.isfinite(gr).all() and gr.abs().sum() > 0
    assert len(info["traj"].zo_delta) == T - 1 - 2


def test_fo_refuses_non_differentiable_reward():
    model, sched, _ = tiny()
    from rands.applications.rlr.rewards import Compressibility
    bank = NoiseBank.draw(T, 4, (D,), torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ParameterError, match="not differentiable"):
        make_estimator("rlr").surrogate(model, sched, bank, Compressibility(), rng=np.random.default_rng(0))
    S, _ = make_estimator("ddpo").surrogate(model, sched, bank, Compressibility(), rng=np.random.default_rng(0))
    assert S.requires_grad


def test_replicated_gradients_equal_per_replication_loop():
    from rands.applications.rlr.estimator import flat_grad, replicated_gradients
    model, sched, reward = tiny()
    g = torch.Generator().manual_seed(11)
    G, B = 3, 5
    xT = torch.randn(G, B, D, generator=g, dtype=torch.float64)
    eps = torch.randn(T, G, B, D, generator=g, dtype=torch.float64)
    for name, kw in [("full_bp", {}), ("rlr", {"h": 2}), ("ddpo_ppo", {"baseline": "loo"})]:
        est = make_estimator(name, **kw)
        terms = est.plan.sample(np.random.default_rng(0), T)
        V, cost = replicated_gradients(model, sched, reward, est, xT, eps, terms)
        for r in range(G):
            S, info = est.surrogate(model, sched, NoiseBank(xT[r], eps[:, r]), reward, rng=None, terms=terms)
            assert torch.allclose(flat_grad(model, S), V[r], rtol=1e-9, atol=1e-9)
        assert cost == info["cost"]
    with pytest.raises(ParameterError, match="ZO"):
        replicated_gradients(model, sched, reward, make_estimator("rlr", fill="zo"), xT, eps, [FO(1), ZO((2, 3, 4))])
