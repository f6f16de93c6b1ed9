"""Forward learning with optimal query allocation (FLOPS, Ren et al. 2025, arXiv 2410.05966).

- estimators: :class:`LayerwiseLR` (noise in pre-activations, antithetic pairs,
  baseline) and :class:`SPSA` (MeZO two-point), model-agnostic (hooks / in-place
  parameter perturbation);
- allocators: :class:`Uniform`, :class:`LossProportional`, :class:`TwoStageNeyman`,
  :class:`Bernoulli` (public FLOPS code), :class:`GaussianAllocator` (learned,
  labelled reconstruction); integer allocation in ``allocation``;
- :class:`ForwardGradient`: torch.optim-style optimizer, ``step(closure)`` with
  per-example losses;
- ``train_run`` (few-shot digits, MLP / tiny ViT) and :class:`FlopsProblem`
  (settings as R&S systems; registered as problem "flops").

Needs torch (``pip install rands[torch]``); ``import rands`` does not import it.
"""
from rands.problems import register as _register

from .allocation import allocate, allocation_variance, largest_remainder, proportional_with_floor
from .allocators import (ALLOCATORS, Allocator, Bernoulli, GaussianAllocator, LossProportional,
                         TwoStageNeyman, Uniform, make_allocator)
from .estimators import SPSA, LayerwiseLR, QueryStats
from .optim import ForwardGradient
from .problem import FlopsProblem, default_settings
from .train import train_run

_register("flops", "rands.applications.flops.problem:FlopsProblem")

__all__ = ["allocate", "allocation_variance", "largest_remainder", "proportional_with_floor", "ALLOCATORS",
           "Allocator", "Bernoulli", "GaussianAllocator", "LossProportional", "TwoStageNeyman", "Uniform",
           "make_allocator", "SPSA", "LayerwiseLR", "QueryStats", "ForwardGradient", "FlopsProblem",
           "default_settings", "train_run"]
