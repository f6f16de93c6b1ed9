"""RLR: recursive likelihood-ratio (half-order) fine-tuning of diffusion samplers (arXiv 2502.00639).

One estimator core (:mod:`.estimator`) with a per-step strategy map (:mod:`.plans`): first-order
backprop, half-order sub-chains, likelihood ratio on the sampler's own noise, parameter-perturbation
zeroth order, truncation. RLR, DDPO (REINFORCE, PPO-clip), DRaFT-K/AlignProp and full backprop are
configurations; :func:`check_coverage` certifies unbiasedness (each step estimated exactly once).
:meth:`Estimator.gradient` (used by :func:`estimate_gradient` and :func:`~.train.finetune`) backpropagates
one term at a time, so RLR(h) holds the graph of h steps (RLR's memory claim); :mod:`.memory` measures it.
:mod:`.schedule` is a DDIM sampler with eta > 0 and injected noise; :mod:`.problem` exposes
fine-tuned models as rands systems. Importing this package imports torch (``import rands`` does not).
"""
import torch as _torch

from .estimator import (ESTIMATORS, Estimator, Trajectory, chunk_from_budget, estimate_gradient, flat_grad,
                        make_estimator, profile_step_memory, sample_chain)
from .plans import (FO, HO, LR, ZO, Coverage, FixedPlan, RandomStepsPlan, RandomTruncationPlan, RLRPlan,
                    StepNorms, check_coverage, coverage_counts, h_from_budget)
from .schedule import DDIMSchedule, NoiseBank, gaussian_logprob, linear_alphas_cumprod

__all__ = ["ESTIMATORS", "Estimator", "Trajectory", "chunk_from_budget", "estimate_gradient", "flat_grad", "make_estimator",
           "profile_step_memory", "sample_chain", "FO", "HO", "LR", "ZO", "Coverage", "FixedPlan",
           "RandomStepsPlan", "RandomTruncationPlan", "RLRPlan", "StepNorms", "check_coverage",
           "coverage_counts", "h_from_budget", "DDIMSchedule", "NoiseBank", "gaussian_logprob",
           "linear_alphas_cumprod"]
