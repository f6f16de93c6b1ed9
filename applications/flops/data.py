"""Few-shot digits (scikit-learn's bundled 8x8 digits) and backprop pre-training.

Fixed split (stratified, seed 0): 1437 train / 360 test. Pre-training: backprop
on the training images of classes 0-4 only (a 10-way head whose rows 5-9 stay
untrained), so fine-tuning on all ten classes from 16 shots each mimics
few-shot transfer. Pre-trained weights are cached per (model, pretrain seed).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from .models import build_model

__all__ = ["digits_split", "few_shot", "pretrained", "accuracy"]


@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test); pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=360, stratify=d.target, random_state=0)
    return (torch.from_numpy(xtr), torch.from_numpy(ytr).long(), torch.from_numpy(xte),
            torch.from_numpy(yte).long())


def few_shot(shots: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``shots`` training examples per class, drawn with ``gen``."""
    xtr, ytr, _, _ = digits_split()
    idx = []
    for c in range(10):
        members = torch.nonzero(ytr == c).flatten()
        idx.append(members[torch.randperm(members.numel(), generator=gen)[:shots]])
    idx = torch.cat(idx)
    return xtr[idx], ytr[idx]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())


@functools.lru_cache(maxsize=8)
def _pretrained_state(name: str, seed: int, classes: int, epochs: int) -> dict:
    torch.manual_seed(seed)
    model = build_model(name)
    xtr, ytr, _, _ = digits_split()
    keep = ytr < classes
    x, y = xtr[keep], ytr[keep]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], 64):
            j = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[j]), y[j]).backward()
            opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def pretrained(name: str, seed: int = 0, classes: int = 5, epochs: int = 30) -> nn.Module:
    """A fresh copy of ``name`` pre-trained by backprop on classes < ``classes``."""
    model = build_model(name)
    model.load_state_dict(_pretrained_state(name, seed, classes, epochs))
    return model
