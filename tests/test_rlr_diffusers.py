"""Optional diffusers path: UNet2DModel + DDIMScheduler (skipped when diffusers is absent)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
torch.set_num_threads(1)

from rands.applications.rlr import DDIMSchedule, NoiseBank, estimate_gradient, make_estimator, sample_chain  # noqa
from rands.applications.rlr.models import DiffusersDenoiser  # noqa: E402


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
