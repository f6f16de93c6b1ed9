"""Rewards on generated 8x8 digits: differentiable and non-differentiable.

A reward maps x_0 (B, 64) to (B,) and declares ``differentiable``; estimators
with first-order terms refuse a non-differentiable reward.
"""
from __future__ import annotations

import torch

from rands.errors import check_int

__all__ = ["ClassifierLogProb", "ClassifierHit", "Compressibility", "QuadraticReward"]


class _Frozen:
    def __init__(self, classifier: torch.nn.Module):
        self.classifier = classifier
        for p in classifier.parameters():
            p.requires_grad_(False)
        classifier.eval()


class ClassifierLogProb(_Frozen):
    """log p(target | x_0) under a frozen classifier (differentiable)."""
    differentiable = True

    def __init__(self, classifier, target: int = 3):
        super().__init__(classifier)
        self.target = check_int("target", target, low=0)

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.classifier(x0.clamp(-1.5, 1.5)), dim=1)[:, self.target]


class ClassifierHit(_Frozen):
    """1[argmax classifier(x_0) = target] (not differentiable)."""
    differentiable = False

    def __init__(self, classifier, target: int = 3):
        super().__init__(classifier)
        self.target = check_int("target", target, low=0)

    @torch.no_grad()
    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return (self.classifier(x0).argmax(1) == self.target).to(x0.dtype)


class Compressibility:
    """Minus the number of distinct grey levels after quantising to 17 levels, / 17
    (a JPEG-compressibility analogue; not differentiable)."""
    differentiable = False

    @torch.no_grad()
    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        q = torch.round((x0.clamp(-1, 1) + 1) * 8).long().flatten(1)  # 0..16
        onehot = torch.zeros(q.shape[0], 17, dtype=torch.bool)
        onehot.scatter_(1, q, True)
        return -onehot.sum(1).to(x0.dtype) / 17.0


class QuadraticReward:
    """-||x_0 - c||^2 summed over dims (smooth; for exact-gradient tests)."""
    differentiable = True

    def __init__(self, center: torch.Tensor):
        self.center = center

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return -((x0 - self.center) ** 2).flatten(1).sum(1)
