"""The diffusers path: a random-init UNet2DModel + DDIMScheduler (no hub download; `.ci/run` installs
diffusers). Sampler equality with DDIMScheduler.step, RLR unbiased against full backprop on the UNet
(DRaFT-1 biased), the memory-saving form, and a real fine-tune whose reward improves."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
torch.set_num_threads(1)

from rands.applications.rlr import DDIMSchedule, NoiseBank, estimate_gradient, make_estimator, sample_chain  # noqa
from rands.applications.rlr.estimator import flat_grad  # noqa: E402
from rands.applications.rlr.memory import peak_saved_bytes, step_saved_bytes  # noqa: E402
from rands.applications.rlr.models import DiffusersDenoiser  # noqa: E402
from rands.applications.rlr.train import finetune  # noqa: E402


def tiny_unet():
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                                 block_out_channels=(8, 16), norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"))
    sched = diffusers.DDIMScheduler(num_train_timesteps=100, set_alpha_to_one=False, steps_offset=1,
                                          clip_sample=False)
    return DiffusersDenoiser(unet), sched


def test_sampler_matches_diffusers_step_with_variance_noise():
    model, sch = tiny_unet()
    eta = 0.7
    ours = DDIMSchedule.from_diffusers(sch, 5, eta)
    g = torch.Generator().manual_seed(1)
    bank = NoiseBank.draw(5, 2, (1, 8, 8), g)
    traj = sample_chain(model, ours, bank)
    x = bank.x_T
    with torch.no_grad():
        for n, t in enumerate(sch.timesteps):
            step = 5 - n  # generation order -> step number
            eps = model(x, t.repeat(2))
            x = sch.step(eps, t, x, eta=eta, variance_noise=bank.eps[step - 1]).prev_sample
            assert torch.allclose(x, traj.xs[step - 1], atol=1e-5)
    assert (ours.sigma > 0).all()
    clipped = diffusers.DDIMScheduler(num_train_timesteps=100)  # clip_sample=True by default
    with pytest.raises(Exception, match="clip_sample"):
        DDIMSchedule.from_diffusers(clipped, 5, eta)


def test_estimators_run_on_unet():
    model, sch = tiny_unet()
    ours = DDIMSchedule.from_diffusers(sch, 4, 1.0)
    bank = NoiseBank.draw(4, 2, (1, 8, 8), torch.Generator().manual_seed(2))

    def reward(x0):
        return -(x0 ** 2).flatten(1).mean(1)
    reward.differentiable = True
    for name in ("full_bp", "rlr", "ddpo"):
        est = make_estimator(name)
        assert est.coverage(ours).unbiased
        gr, info = estimate_gradient(model, ours, bank, reward, est, rng=np.random.default_rng(0))
        assert torch.isfinite(gr).all() and gr.norm() > 0


# ---- gradients and fine-tuning on the UNet ------------------------------------------------------
T4 = 4
SHAPE = (1, 8, 8)


def unet_setup():
    """Random-init UNet, DDIMScheduler with trailing spacing over 100 training steps (sigma_t in
    0.01..0.49 at eta = 1, so the likelihood ratios have moderate variance), reward -mean (x0 - 1/2)^2."""
    model, _ = tiny_unet()
    sch = diffusers.DDIMScheduler(num_train_timesteps=100, set_alpha_to_one=False, timestep_spacing="trailing",
                                  clip_sample=False)
    ours = DDIMSchedule.from_diffusers(sch, T4, 1.0)

    def reward(x0):
        return -((x0 - 0.5) ** 2).flatten(1).mean(1)
    reward.differentiable = True
    return model, ours, reward


def test_rlr_unbiased_and_draft1_biased_on_unet():
    """Projection on the full-backprop direction u (1024 independent chains): M = 48 replications of
    16 chains under common random numbers. RLR's mean is within 4 standard errors of full backprop's;
    DRaFT-1 (truncated after the last step) is off by more than 20 standard errors and keeps < 30 %."""
    model, ours, reward = unet_setup()
    g = torch.Generator().manual_seed(10)
    u = sum(estimate_gradient(model, ours, NoiseBank.draw(T4, 256, SHAPE, g), reward, make_estimator("full_bp"),
                              rng=None)[0] for _ in range(4)) / 4
    uh = (u / u.norm()).double()
    rng = np.random.default_rng(0)
    names = ("full_bp", "rlr", "draft_1")
    proj = {n: [] for n in names}
    for _ in range(48):
        bank = NoiseBank.draw(T4, 16, SHAPE, g)
        traj = None
        for n in names:
            gr, info = estimate_gradient(model, ours, bank, reward, make_estimator(n), rng=rng, traj=traj)
            traj = info["traj"]
            proj[n].append(float(gr.double() @ uh))
    P = {n: np.array(v) for n, v in proj.items()}
    M = P["full_bp"].size
    for n, lo, hi in (("rlr", None, 4.0), ("draft_1", 20.0, None)):
        d = P[n] - P["full_bp"]
        z = d.mean() / (d.std(ddof=1) / math.sqrt(M))
        if hi is not None:
            assert abs(z) < hi, (n, z)
        if lo is not None:
            assert abs(z) > lo and P[n].mean() < 0.3 * P["full_bp"].mean(), (n, z, P[n].mean())
    # the truth direction's own estimate agrees with the replications' full-backprop mean
    assert abs(P["full_bp"].mean() - float(u.norm())) < 0.05 * float(u.norm())


def test_memory_saving_form_on_unet():
    """Same gradient as backpropagating the summed surrogate; peak saved activations of RLR(h = 2) about
    two UNet steps, full backprop about T = 4."""
    model, ours, reward = unet_setup()
    bank = NoiseBank.draw(T4, 4, SHAPE, torch.Generator().manual_seed(3))
    step = step_saved_bytes(model, ours, bank.x_T)
    est = make_estimator("rlr", h=2)
    terms = est.plan.sample(np.random.default_rng(1), T4)
    S, info = est.surrogate(model, ours, bank, reward, rng=None, terms=terms)
    g_sum = flat_grad(model, S)
    g_str, info2 = est.gradient(model, ours, bank, reward, rng=None, terms=terms, traj=info["traj"])
    assert torch.allclose(g_sum, g_str, rtol=1e-4, atol=1e-6 * float(g_sum.abs().max()))
    assert info2["cost"]["peak_depth"] == 2 and info["cost"]["peak_depth"] == T4
    peak_rlr = peak_saved_bytes(model, lambda: est.gradient(model, ours, bank, reward, rng=None, terms=terms,
                                                            traj=info["traj"]))
    full = make_estimator("full_bp")
    peak_bp = peak_saved_bytes(model, lambda: full.gradient(model, ours, bank, reward, rng=None, traj=info["traj"]))
    assert 1.5 * step < peak_rlr < 2.5 * step, (peak_rlr / step)
    assert peak_bp > 3.5 * step, (peak_bp / step)


def test_rlr_finetunes_unet_reward():
    """30 Adam updates of RLR (h = 2, batches of 8) on the random-init UNet raise the mean reward on a
    fixed bank of 128 evaluation chains from -4.58 by more than 1.0 (measured: +2.4, seed 0; the bank's
    standard error is ~0.05); full backprop, the reference, by more."""
    ev = NoiseBank.draw(T4, 128, SHAPE, torch.Generator().manual_seed(99))
    out = {}
    for name in ("rlr", "full_bp"):
        model, ours, reward = unet_setup()
        h = finetune(model, ours, reward, make_estimator(name), updates=30, batch=8, lr=3e-3, seed=0, shape=SHAPE,
                     eval_noise=ev, eval_rewards={"r": reward}, eval_every=30)
        out[name] = h["eval_r"]
        assert h["ledger"]["samples"] == 30 * 8
    assert out["rlr"][0] == pytest.approx(out["full_bp"][0])
    assert out["rlr"][-1] - out["rlr"][0] > 1.0, out
    assert out["full_bp"][-1] > out["rlr"][-1], out
