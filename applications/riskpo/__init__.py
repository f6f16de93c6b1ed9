"""RiskPO for RL with verifiable reward (arXiv 2510.00911) and GRPO-family baselines.

Modules (torch is imported here, never by ``rands`` itself):
- ``mvar``: MVaR / RVaR / CVaR exact values, score-function weights, quantiles, the
  two-timescale quantile tracker (state saved with ``state_dict``).
- ``advantages``: GRPO, Dr.GRPO, RS-GRPO, NSR and RiskPO behind one interface
  ``est(rewards, question_ids, bundle_ids=None) -> AdvantageResult``.
- ``losses``: PPO-clip surrogate with token-mean (and GRPO / Dr.GRPO) aggregation.
- ``metrics``: unbiased pass@k.
- ``bias``: exact expected update vs the MVaR gradient (quantile bias by sample size).
- ``adapters.trl`` / ``adapters.verl``: framework integrations (frameworks imported lazily).
- ``task``, ``policy``, ``train``: the Countdown-3 CPU-scale reproduction.
- ``problem``: trained policies as R&S systems (``rands.select`` picks the best checkpoint).
"""
from .advantages import (DrGRPO, GRPO, NSR, RSGRPO, AdvantageEstimator, AdvantageResult, RiskPO,
                         make_estimator, stable_bundles)
from .losses import ppo_clip_loss
from .metrics import pass_at_k
from .mvar import (QuantileTracker, RiskTerm, exact_mvar, exact_rvar, mvar_weights, released_terms)

__all__ = ["AdvantageEstimator", "AdvantageResult", "GRPO", "DrGRPO", "RSGRPO", "NSR", "RiskPO",
           "make_estimator", "stable_bundles", "ppo_clip_loss", "pass_at_k", "QuantileTracker", "RiskTerm",
           "exact_mvar", "exact_rvar", "mvar_weights", "released_terms"]
