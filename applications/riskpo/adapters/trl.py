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

``RiskPOGRPOTrainer`` is built on first access, so importing this module works without TRL;
the pure function :func:`grouped_advantages` is what the trainer calls.
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


def grouped_advantages(rewards: torch.Tensor, num_generations: int, estimator: AdvantageEstimator,
                       prompts: Sequence | None = None, bundle_seed: int = 0) -> tuple[torch.Tensor, dict]:
    """Advantages (N,) for rewards (N,) laid out as contiguous groups of ``num_generations``.

    ``prompts`` (length N, or N / G one per group) give stable bundle ids; without them
    bundles follow group order.
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
    res = estimator(r, qids, bundle_ids=bundle_ids)
    return res.advantages, res.info


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
            w = self.reward_weights.to(rewards_per_func.device)
            rewards = (rewards_per_func * w.unsqueeze(0)).nansum(dim=1)
            adv, info = grouped_advantages(rewards, self.num_generations, self.advantage_estimator,
                                           prompts=all_prompts)
            n_local = output["advantages"].shape[0]
            start = self.accelerator.process_index * n_local
            output["advantages"] = adv[start:start + n_local].to(output["advantages"].dtype).to(
                output["advantages"].device)
            mode = "train" if self.model.training else "eval"
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
