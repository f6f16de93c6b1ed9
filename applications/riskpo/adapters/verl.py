"""verl adapter: RiskPO (and the other estimators) as a verl advantage estimator.

Usage (verl >= 0.4.1, where ``register_adv_est`` exists)::

    from rands.applications.riskpo.adapters import verl as rp_verl
    rp_verl.register()              # registers "riskpo" with verl's core_algos
    # then: algorithm.adv_estimator=riskpo  +algorithm.riskpo.alpha=0.2 ...

With verl >= 0.6 set ``VERL_USE_EXTERNAL_MODULES=rands.applications.riskpo.adapters.verl_register``
(that module registers on import; the variable must reach the Ray workers, e.g. through
``runtime_env``); on 0.4.1-0.5.x call ``register()`` in the entry script (reference note
riskpo.md section 10). Parameters: ``+algorithm.riskpo.alpha=0.2 +algorithm.riskpo.bundle_size=5 ...``;
use ``actor.loss_agg_mode=token-mean`` and no global advantage whitening. verl passes no bundle ids, so
bundles are formed by sorting the unique (random uuid4) uids and chunking by B: random
bundles, independent of batch order. verl computes advantages on the driver over the
whole batch, so the quantile tracker needs no all-reduce there; its state is kept per
estimator name here and saved with :func:`state_dict` / :func:`load_state_dict`.

Pure functions (:func:`compute_advantages`, :func:`estimator_from_config`) need only
torch and are tested against the same golden vectors as the core.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ....errors import ParameterError
from ..advantages import AdvantageEstimator, make_estimator

_ESTIMATORS: dict[str, AdvantageEstimator] = {}
_ADV_FNS: dict[str, Any] = {}
_RISKPO_KEYS = ("alpha", "beta", "w", "bundle_size", "quantiles", "natural_baseline", "credit", "scale",
                "tracker_lr", "tracker_decay", "bundle_seed", "unequal_groups")


def _get(cfg: Any, key: str, default=None):
    if cfg is None:
        return default
    if hasattr(cfg, "get"):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def estimator_from_config(config: Any, name: str = "riskpo") -> AdvantageEstimator:
    """The estimator for verl's ``algorithm`` config node (``algorithm.<name>.*`` holds parameters).

    Cached per name so stateful estimators (the quantile tracker) persist across steps.
    ``algorithm.norm_adv_by_std_in_grpo`` sets RiskPO's scale ("bundle_std" if true, "none" if false)
    unless ``algorithm.riskpo.scale`` is given.
    """
    if name in _ESTIMATORS:
        return _ESTIMATORS[name]
    sub = _get(config, name, None) or {}
    params = {k: _get(sub, k) for k in _RISKPO_KEYS if _get(sub, k) is not None} if name == "riskpo" else \
        {k: v for k, v in dict(sub).items()}
    if name == "riskpo" and "scale" not in params:
        norm = _get(config, "norm_adv_by_std_in_grpo", True)
        params["scale"] = "auto" if norm else "none"
    est = make_estimator(name, **params)
    _ESTIMATORS[name] = est
    return est


def uid_to_int(index) -> np.ndarray:
    """Integer question ids: rank of each uid among the sorted unique uids."""
    arr = np.asarray(list(index), dtype=object)
    uniq = sorted(set(arr.tolist()))
    lookup = {u: i for i, u in enumerate(uniq)}
    return np.array([lookup[u] for u in arr.tolist()], dtype=np.int64)


def compute_advantages(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index,
                       estimator: AdvantageEstimator, bundle_size: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """verl contract: scores = sum of token rewards; returns (advantages, returns, info), each (bs, T).

    Bundles (when ``bundle_size`` is given): sorted unique uids chunked by B.
    """
    if token_level_rewards.shape != response_mask.shape:
        raise ParameterError(f"token_level_rewards {tuple(token_level_rewards.shape)} and response_mask "
                             f"{tuple(response_mask.shape)} must have the same shape")
    scores = token_level_rewards.sum(-1).detach().to(torch.float64).cpu()
    qids = uid_to_int(index)
    if len(qids) != scores.numel():
        raise ParameterError(f"index has {len(qids)} entries, batch has {scores.numel()}")
    bundle_ids = None if bundle_size is None else qids // int(bundle_size)
    counts = np.bincount(qids)
    if counts.min() != counts.max() and not getattr(estimator, "per_question", True) and \
            getattr(estimator, "unequal_groups", "error") == "error":
        raise ParameterError(
            f"verl passed uids with {counts.min()} to {counts.max()} rows each; {estimator.name} needs equal groups. "
            f"verl >= 0.9's v1 trainer gives one row per turn of a multi-turn rollout (and drops sessions that "
            f"return None). Set +algorithm.{estimator.name}.unequal_groups=truncate (each uid keeps its first "
            f"min-G rows, the rest get advantage 0), use a per-question estimator (grpo, rsgrpo, nsr), or roll out "
            f"single-turn with a fixed rollout.n")
    res = estimator(scores, qids, bundle_ids=bundle_ids)
    adv = res.advantages.to(token_level_rewards.dtype).to(token_level_rewards.device)[:, None] * response_mask
    return adv, adv, res.info


def make_adv_fn(name: str = "riskpo"):
    """The function (one per name, cached) with verl's advantage-estimator signature for estimator ``name``."""
    if name in _ADV_FNS:
        return _ADV_FNS[name]

    def compute_rands_advantage(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, config=None,
                                index=None, **kwargs):
        if index is None:
            raise ParameterError("verl passed no `index` (uids); group advantages need it")
        est = estimator_from_config(config, name)
        B = getattr(est, "bundle_size", None)
        adv, ret, _ = compute_advantages(token_level_rewards, response_mask, index, est, bundle_size=B)
        return adv, ret

    compute_rands_advantage.__name__ = f"compute_{name}_outcome_advantage"
    compute_rands_advantage.rands_estimator = name
    _ADV_FNS[name] = compute_rands_advantage
    return compute_rands_advantage


def register(names=("riskpo",)) -> None:
    """Register estimators with verl's ``register_adv_est`` (imports verl; clear error if absent).

    Idempotent: a name already in verl's registry (registered by an earlier call, by
    ``VERL_USE_EXTERNAL_MODULES``, or verl's own, e.g. "grpo") is left as it is.
    """
    try:
        from verl.trainer.ppo import core_algos
        from verl.trainer.ppo.core_algos import register_adv_est
    except ImportError as exc:
        raise ImportError("the verl adapter needs verl >= 0.4.1 (pip install verl); the pure functions "
                          "compute_advantages / estimator_from_config work without it") from exc
    registry = getattr(core_algos, "ADV_ESTIMATOR_REGISTRY", {})
    for n in names:
        if registry.get(n) is not None:
            continue  # registered already (by rands, possibly another import of it), or verl's own (grpo)
        register_adv_est(n)(make_adv_fn(n))


def state_dict() -> dict:
    """JSON-serialisable state of every cached estimator (save next to the verl checkpoint)."""
    return {n: e.state_dict() for n, e in _ESTIMATORS.items()}


def load_state_dict(state: dict, config: Any = None) -> None:
    for n, s in state.items():
        estimator_from_config(config, n).load_state_dict(s)


def reset() -> None:
    """Forget cached estimators (tests; a new run)."""
    _ESTIMATORS.clear()
