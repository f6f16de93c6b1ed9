"""PPO-clip surrogate with verl-style loss aggregation (token-mean by default)."""
from __future__ import annotations

import torch

from ...errors import ParameterError

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")


def ppo_clip_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                  *, clip_low: float = 0.2, clip_high: float = 0.2, clip_c: float | None = 3.0,
                  agg: str = "token-mean", max_len: int | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate (Schulman et al. 2017) with dual clip (Ye et al. 2020) for A < 0.

    Per token: l = max(-A r, -A clip(r, 1-clip_low, 1+clip_high)), r = exp(logp - old_logp);
    if A < 0, l = min(l, -A clip_c). ``advantages`` is (n,) (broadcast over tokens) or (n, T).
    Aggregation: "token-mean" sum(l m)/sum(m) (verl default, DAPO); "seq-mean-token-mean"
    mean over sequences of per-sequence token means (GRPO); "seq-mean-token-sum-norm"
    sum(l m)/(n max_len) (Dr.GRPO).
    """
    if agg not in AGG_MODES:
        raise ParameterError(f"agg must be one of {AGG_MODES}, got {agg!r}")
    A = advantages if advantages.dim() == 2 else advantages[:, None]
    A = A.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    l1 = -A * ratio
    l2 = -A * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(l1, l2)
    if clip_c is not None:
        if clip_c <= 1.0:
            raise ParameterError(f"clip_c (dual clip) must be > 1, got {clip_c}")
        loss = torch.where(A < 0, torch.minimum(loss, -A * clip_c), loss)
    m = mask.to(loss.dtype)
    if agg == "token-mean":
        out = (loss * m).sum() / m.sum().clamp_min(1.0)
    elif agg == "seq-mean-token-mean":
        out = ((loss * m).sum(1) / m.sum(1).clamp_min(1.0)).mean()
    else:
        out = (loss * m).sum() / (loss.shape[0] * (max_len or loss.shape[1]))
    with torch.no_grad():
        clipped = ((ratio - 1.0).abs() > min(clip_low, clip_high)).to(loss.dtype)
        info = {"clip_frac": float((clipped * m).sum() / m.sum().clamp_min(1.0)),
                "approx_kl": float((((ratio - 1) - (logp - old_logp)) * m).sum() / m.sum().clamp_min(1.0))}
    return out, info
