"""DDIM sampling with eta > 0 and injected noise, with Gaussian log-probabilities.

Step numbering follows the RLR paper (arXiv 2502.00639): generation runs
x_T -> x_0 and *step t* maps x_t to x_{t-1}; step 1 produces x_0. Arrays indexed
by step are stored at position t-1.

One DDIM step (Song et al. 2021, eq. 12), with a_t = alpha_bar at the step's
training timestep and a_p = alpha_bar at the previous one:

    x0_hat   = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
    sigma_t  = eta * sqrt((1 - a_p) / (1 - a_t)) * sqrt(1 - a_t / a_p)
    mean_t   = sqrt(a_p) x0_hat + sqrt(1 - a_p - sigma_t^2) eps
    x_{t-1}  = mean_t + sigma_t * noise_t,     noise_t ~ N(0, I) injected

The noise is an input (never drawn inside), so every estimator can share x_T
and the step noises (common random numbers). ``log p(x_{t-1} | x_t)`` is the
Gaussian N(mean_t, sigma_t^2 I) log-density **summed** over dimensions (the
DDPO code averages; ``reduce="mean"`` reproduces that, and divides the
likelihood-ratio gradient by the dimension).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from rands.errors import ParameterError, check_float, check_int

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["DDIMSchedule", "linear_alphas_cumprod", "gaussian_logprob", "NoiseBank", "Denoiser"]


def linear_alphas_cumprod(train_steps: int = 200, beta_start: float | None = None,
                          beta_end: float | None = None) -> np.ndarray:
    """alpha_bar of the linear-beta DDPM schedule (Ho et al. 2020), float64.

    Default betas are Ho et al.'s (1e-4, 0.02) for 1000 steps rescaled by
    1000 / train_steps, so that alpha_bar at the last step is ~0 (x_T ~ N(0, I)).
    """
    check_int("train_steps", train_steps, low=2)
    scale = 1000.0 / train_steps
    b0 = 1e-4 * scale if beta_start is None else float(beta_start)
    b1 = min(0.02 * scale, 0.999) if beta_end is None else float(beta_end)
    betas = np.linspace(b0, b1, train_steps, dtype=np.float64)
    return np.cumprod(1.0 - betas)


@dataclass
class DDIMSchedule:
    """Per-step constants of a DDIM sampler with ``num_steps`` steps.

    ``timesteps[t-1]`` is the training timestep fed to the denoiser at step t;
    ``a[t-1]``, ``a_prev[t-1]``, ``sigma[t-1]`` the constants above. Build it
    with :meth:`from_alphas` (evenly spaced, "trailing" spacing: step T at the
    last training timestep, as diffusers' ``timestep_spacing="trailing"``) or
    :meth:`from_diffusers` (any spacing of a ``DDIMScheduler``).
    """

    timesteps: np.ndarray
    a: np.ndarray
    a_prev: np.ndarray
    eta: float

    def __post_init__(self) -> None:
        self.eta = check_float("eta", self.eta, low=0.0)
        self.timesteps = np.asarray(self.timesteps, dtype=np.int64)
        self.a = np.asarray(self.a, dtype=np.float64)
        self.a_prev = np.asarray(self.a_prev, dtype=np.float64)
        T = self.timesteps.shape[0]
        if T < 1 or self.a.shape != (T,) or self.a_prev.shape != (T,):
            raise ParameterError("timesteps, a and a_prev must be 1-D arrays of the same length >= 1")
        if np.any(self.a_prev < self.a):
            raise ParameterError("a_prev must be >= a at every step (noise decreases along the chain)")
        var = (1.0 - self.a_prev) / (1.0 - self.a) * (1.0 - self.a / self.a_prev)
        self.sigma = self.eta * np.sqrt(np.clip(var, 0.0, None))
        if np.any(1.0 - self.a_prev - self.sigma ** 2 < -1e-12):
            raise ParameterError(f"eta={self.eta} too large for this schedule (sigma_t^2 > 1 - a_prev)")
        self._tensors: dict = {}

    @property
    def num_steps(self) -> int:
        return int(self.timesteps.shape[0])

    @classmethod
    def from_alphas(cls, alphas_cumprod: np.ndarray, num_steps: int, eta: float) -> "DDIMSchedule":
        """"Trailing" spacing: step t uses training timestep c*t - 1 (c = train_steps // num_steps),
        so step T starts from the last (pure-noise) level; step 1 lands on alpha_bar[0] (not 1), so
        sigma_1 > 0 as with diffusers' ``set_alpha_to_one=False``."""
        ac = np.asarray(alphas_cumprod, dtype=np.float64)
        n = check_int("num_steps", num_steps, low=1, high=ac.shape[0] - 1)
        c = ac.shape[0] // n
        ts = c * np.arange(1, n + 1) - 1 + (ac.shape[0] - c * n)
        prev = ts - c
        a_prev = np.where(prev >= 0, ac[np.maximum(prev, 0)], ac[0])
        return cls(timesteps=ts, a=ac[ts], a_prev=a_prev, eta=eta)

    @classmethod
    def from_diffusers(cls, scheduler, num_steps: int, eta: float) -> "DDIMSchedule":
        """Constants of a diffusers ``DDIMScheduler`` after ``set_timesteps(num_steps)``.

        The scheduler must predict epsilon without x0 clipping or thresholding (our step is the
        unclipped DDIM update, whose Gaussian log-density the likelihood-ratio terms use)."""
        cfg = scheduler.config
        if getattr(cfg, "prediction_type", "epsilon") != "epsilon":
            raise ParameterError(f"scheduler prediction_type must be 'epsilon', got {cfg.prediction_type!r}")
        if getattr(cfg, "clip_sample", False) or getattr(cfg, "thresholding", False):
            raise ParameterError("scheduler must have clip_sample=False and thresholding=False")
        scheduler.set_timesteps(num_steps)
        ts_gen = np.asarray(scheduler.timesteps.cpu().numpy(), dtype=np.int64)  # generation order
        ac = scheduler.alphas_cumprod.double().cpu().numpy()
        ratio = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        prev = ts_gen - ratio
        final = float(scheduler.final_alpha_cumprod)
        a_prev = np.where(prev >= 0, ac[np.maximum(prev, 0)], final)
        # reverse to step numbering (step 1 last)
        return cls(timesteps=ts_gen[::-1].copy(), a=ac[ts_gen][::-1].copy(), a_prev=a_prev[::-1].copy(),
                   eta=eta)

    def consts(self, t: int, like: torch.Tensor) -> tuple:
        """(sqrt a, sqrt(1-a), sqrt a_prev, dir coefficient, sigma) of step t as Python floats."""
        i = t - 1
        a, ap, s = float(self.a[i]), float(self.a_prev[i]), float(self.sigma[i])
        return math.sqrt(a), math.sqrt(1 - a), math.sqrt(ap), math.sqrt(max(1 - ap - s * s, 0.0)), s

    def timestep_tensor(self, t: int, batch: int, device=None) -> torch.Tensor:
        return torch.full((batch,), int(self.timesteps[t - 1]), dtype=torch.long, device=device)

    def mean(self, model: Denoiser, x: torch.Tensor, t: int) -> torch.Tensor:
        """mean_t(x_t; theta): the deterministic part of step t."""
        eps = model(x, self.timestep_tensor(t, x.shape[0], x.device))
        return self.mean_from_eps(eps, x, t)

    def mean_from_eps(self, eps: torch.Tensor, x: torch.Tensor, t: int) -> torch.Tensor:
        sa, s1a, sap, dcoef, _ = self.consts(t, x)
        x0 = (x - s1a * eps) / sa
        return sap * x0 + dcoef * eps

    def step(self, model: Denoiser, x: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        """x_{t-1} = mean_t(x_t) + sigma_t * noise."""
        return self.mean(model, x, t) + float(self.sigma[t - 1]) * noise


def gaussian_logprob(x: torch.Tensor, mean: torch.Tensor, sigma: float, reduce: str = "sum") -> torch.Tensor:
    """log N(x; mean, sigma^2 I) per sample, summed (or averaged) over all non-batch dims."""
    if sigma <= 0:
        raise ParameterError("sigma must be > 0 for a log-probability (this step has no noise; use eta > 0 "
                             "or first-order backprop at this step)")
    lp = -0.5 * ((x - mean) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    lp = lp.flatten(1)
    if reduce == "sum":
        return lp.sum(1)
    if reduce == "mean":
        return lp.mean(1)
    raise ParameterError(f"reduce must be 'sum' or 'mean', got {reduce!r}")


@dataclass
class NoiseBank:
    """Injected noise of a batch of chains: ``x_T`` (B, *shape) and ``eps`` (T, B, *shape).

    ``eps[t-1]`` is the standard-normal noise of step t. Sharing a bank between
    estimators is common random numbers.
    """

    x_T: torch.Tensor
    eps: torch.Tensor

    @property
    def batch(self) -> int:
        return int(self.x_T.shape[0])

    @classmethod
    def draw(cls, num_steps: int, batch: int, shape: Sequence[int], generator: torch.Generator,
             dtype=torch.float32) -> "NoiseBank":
        x_T = torch.randn((batch, *shape), generator=generator, dtype=dtype)
        eps = torch.randn((num_steps, batch, *shape), generator=generator, dtype=dtype)
        return cls(x_T, eps)

    @classmethod
    def from_numpy(cls, values: np.ndarray, num_steps: int, shape: Sequence[int],
                   dtype=torch.float32) -> "NoiseBank":
        """From standard normals of shape (B, (T+1) * prod(shape)): x_T first, then steps T..1."""
        values = np.asarray(values)
        B = values.shape[0]
        d = int(np.prod(shape))
        if values.shape[1] != (num_steps + 1) * d:
            raise ParameterError(f"noise values must have {(num_steps + 1) * d} columns, got {values.shape[1]}")
        v = torch.as_tensor(values, dtype=dtype)
        x_T = v[:, :d].reshape(B, *shape)
        # columns d.. hold steps T, T-1, ..., 1 (generation order)
        steps = v[:, d:].reshape(B, num_steps, *shape).flip(1).transpose(0, 1).contiguous()
        return cls(x_T, steps)

    def subset(self, idx) -> "NoiseBank":
        return NoiseBank(self.x_T[idx], self.eps[:, idx])
