"""TRL adapter: a ``GRPOTrainer`` subclass whose advantages come from a rands estimator.

Usage::

    from rands.applications.riskpo.adapters.trl import RiskPOGRPOTrainer
    from rands.applications.riskpo import RiskPO
    trainer = RiskPOGRPOTrainer(model=..., reward_funcs=..., args=GRPOConfig(scale_rewards="none",
                                num_generations=5, generation_batch_size=B*G*k, ...),
                                advantage_estimator=RiskPO(bundle_size=5))

TRL computes advantages inline in ``_generate_and_score_completions`` with no hook
(huggingface/trl#4525), so the subclass stashes the gathered rewards and prompts in
``_calculate_rewards``, calls the parent, recomputes advantages on the full generation
batch (groups of ``num_generations`` contiguous, as ``RepeatSampler`` lays them out),
re-slices this process's part and overwrites ``output["advantages"]``. Bundles come from
a stable hash of the prompt text (not batch position). Every process sees the same
gathered rewards, so every process's tracker stays identical without an all-reduce.
Keep ``scale_rewards="none"``-style settings: global whitening destroys RiskPO's sign
structure (reference note section 11). Written against TRL 1.x internals
(``_calculate_rewards``, ``_generate_and_score_completions``); they are private and may move.

What the trainer honours (each tested against TRL 1.16 in ``tests/test_trl.py``):

- evaluation groups have ``num_generations_eval`` completions (training: ``num_generations``);
- ``multi_objective_aggregation``: "sum_then_normalize" feeds the weighted sum of the reward
  functions to the estimator; "normalize_then_sum" feeds TRL's per-group, per-function
  normalised weighted sum (:func:`aggregate_rewards`), the estimator replacing TRL's final
  batch standardisation;
- unscorable completions (every reward function returned None) are excluded: the estimator
  sees only the scorable completions of each group (unequal groups, see
  :class:`~rands.applications.riskpo.advantages.AdvantageEstimator`) and they get advantage 0;
- evaluation batches never change estimator state (RiskPO's quantile tracker).

``RiskPOGRPOTrainer`` is built on first access, so importing this module works without TRL;
the pure functions :func:`aggregate_rewards` and :func:`grouped_advantages` are what the trainer calls.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch

from ....errors import ParameterError
from ..advantages import AdvantageEstimator


def prompt_key(text) -> int:
    """A stable 63-bit id of a prompt (blake2b of its text/repr)."""
    h = hashlib.blake2b(str(text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


def _nanstd(x: torch.Tensor, dim: int) -> torch.Tensor:
    """NaN-ignoring std with Bessel's correction (NaN below 2 values), as TRL's ``nanstd``."""
    m = torch.nanmean(x, dim=dim, keepdim=True)
    n = (~torch.isnan(x)).sum(dim=dim, keepdim=True)
    v = torch.nanmean((x - m) ** 2, dim=dim, keepdim=True) * n / (n - 1)
    return torch.where(n > 1, v, torch.full_like(v, float("nan"))).sqrt()


AGGREGATIONS = ("sum_then_normalize", "normalize_then_sum")


def aggregate_rewards(rewards_per_func: torch.Tensor, weights, num_generations: int,
                      aggregation: str = "sum_then_normalize") -> torch.Tensor:
    """One reward (N,) per completion from (N, F) per-function rewards (NaN = function returned None).

    "sum_then_normalize": weighted sum over functions (NaN ignored). "normalize_then_sum": each
    function z-scored within its group of ``num_generations`` (TRL's nanstd + 1e-4), then the
    weighted sum. Rows where every function is NaN (unscorable) stay NaN.
    """
    rpf = torch.as_tensor(rewards_per_func).detach().to(torch.float64).cpu()
    if rpf.ndim != 2:
        raise ParameterError(f"rewards_per_func must be (N, F), got shape {tuple(rpf.shape)}")
    w = torch.as_tensor(weights).detach().to(torch.float64).cpu().reshape(1, -1)
    if w.shape[1] != rpf.shape[1]:
        raise ParameterError(f"{w.shape[1]} reward weights for {rpf.shape[1]} reward functions")
    unscorable = torch.isnan(rpf).all(dim=1)
    if aggregation == "sum_then_normalize":
        r = (rpf * w).nansum(dim=1)
    elif aggregation == "normalize_then_sum":
        G = int(num_generations)
        if rpf.shape[0] % G:
            raise ParameterError(f"{rpf.shape[0]} completions are not whole groups of {G}")
        g = rpf.reshape(-1, G, rpf.shape[1])
        std = _nanstd(g, 1) if G > 1 else torch.zeros_like(g[:, :1])
        z = ((g - torch.nanmean(g, dim=1, keepdim=True)) / (std + 1e-4)).reshape(rpf.shape)
        r = (z * w).nansum(dim=1)
    else:
        raise ParameterError(f"multi_objective_aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    r[unscorable] = float("nan")
    return r


def grouped_advantages(rewards: torch.Tensor, num_generations: int, estimator: AdvantageEstimator,
                       prompts: Sequence | None = None, bundle_seed: int = 0, update: bool = True
                       ) -> tuple[torch.Tensor, dict]:
    """Advantages (N,) for rewards (N,) laid out as contiguous groups of ``num_generations``.

    NaN rewards (unscorable completions) are excluded from the estimator and get advantage 0.
    ``prompts`` (length N, or N / G one per group) give stable bundle ids; without them
    bundles follow group order. ``update=False`` leaves the estimator's state unchanged.
    """
    r = torch.as_tensor(rewards).detach().to(torch.float64).cpu().reshape(-1)
    G = int(num_generations)
    if G < 2 or r.numel() % G:
        raise ParameterError(f"rewards ({r.numel()}) must be whole groups of num_generations={G} >= 2")
    Q = r.numel() // G
    qids = np.repeat(np.arange(Q), G)
    bundle_ids = None
    B = getattr(estimator, "bundle_size", None)
    if B is not None:
        if prompts is not None:
            p = list(prompts)
            if len(p) == r.numel():
                p = p[::G]
            if len(p) != Q:
                raise ParameterError(f"prompts must have N={r.numel()} or N/G={Q} entries, got {len(p)}")
            keys = np.array([prompt_key(f"{bundle_seed}:{x}") for x in p], dtype=np.int64)
            order = np.argsort(keys, kind="stable")
            rank = np.empty(Q, dtype=np.int64)
            rank[order] = np.arange(Q)
            b = rank // int(B)  # groups ordered by a stable hash of (seed, prompt), chunked by B
        else:
            b = np.arange(Q) // int(B)
        bundle_ids = np.repeat(b, G)
    ok = ~torch.isnan(r)
    if not bool(ok.any()):
        return torch.zeros_like(r), {"frac_unscorable": 1.0}
    keep = np.flatnonzero(ok.numpy())
    res = estimator(r[ok], qids[keep], bundle_ids=None if bundle_ids is None else bundle_ids[keep], update=update)
    adv = torch.zeros_like(r)
    adv[ok] = res.advantages
    return adv, {**res.info, "frac_unscorable": float(1.0 - ok.double().mean())}


def _build_trainer():
    try:
        from accelerate.utils import gather_object
        from trl import GRPOTrainer
    except ImportError as exc:
        raise ImportError("RiskPOGRPOTrainer needs TRL (pip install trl); the pure function "
                          "grouped_advantages works without it") from exc

    class RiskPOGRPOTrainer(GRPOTrainer):
        """GRPOTrainer with advantages from a rands estimator (RiskPO by default)."""

        def __init__(self, *args, advantage_estimator: AdvantageEstimator | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            if advantage_estimator is None:
                from ..advantages import RiskPO
                advantage_estimator = RiskPO()
            self.advantage_estimator = advantage_estimator
            self._rands_stash = None

        def _calculate_rewards(self, inputs, prompts, *args, **kwargs):
            rewards_per_func = super()._calculate_rewards(inputs, prompts, *args, **kwargs)
            self._rands_stash = (rewards_per_func, gather_object(list(prompts)))
            return rewards_per_func

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            rewards_per_func, all_prompts = self._rands_stash
            mode = "train" if self.model.training else "eval"
            G = self.num_generations if mode == "train" else self.num_generations_eval
            rewards = aggregate_rewards(rewards_per_func, self.reward_weights, G,
                                        getattr(self, "multi_objective_aggregation", "sum_then_normalize"))
            if G < 2:  # num_generations_eval = 1: no group baseline, advantage 0 (as TRL)
                adv, info = torch.zeros_like(rewards), {}
            else:
                adv, info = grouped_advantages(rewards, G, self.advantage_estimator, prompts=all_prompts,
                                               update=mode == "train")
            n_local = output["advantages"].shape[0]
            start = self.accelerator.process_index * n_local
            output["advantages"] = adv[start:start + n_local].to(output["advantages"].dtype).to(
                output["advantages"].device)
            for k, v in info.items():
                self._metrics[mode][f"rands/{k}"].append(float(v))
            return output

        def rands_state_dict(self) -> dict:
            return self.advantage_estimator.state_dict()

    return RiskPOGRPOTrainer


_CACHE: dict = {}


def __getattr__(name: str):
    if name == "RiskPOGRPOTrainer":
        if name not in _CACHE:
            _CACHE[name] = _build_trainer()
        return _CACHE[name]
    raise AttributeError(name)
