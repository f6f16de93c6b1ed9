"""One seeded training run of a NAS-Bench-201 cell network on scikit-learn's digits.

The seed fixes the minibatch order and the initialization, and (unless
``fixed_split``) the train/validation split. With ``fixed_split=True`` every run
uses one validation split (drawn from ``SPLIT_SEED``), so the seed-to-seed spread
of an architecture is training noise only, not which digits were held out. With
the same seed two architectures see the same split, order and initialization
seed (common random numbers across architectures).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from .model import TinyNet


@dataclass(frozen=True)
class TrainConfig:
    """Training budget: epochs, batch size, SGD (Nesterov, cosine schedule) and network size."""

    epochs: int = 2
    batch_size: int = 64
    lr: float = 0.1
    weight_decay: float = 5e-4
    channels: int = 8
    cells: int = 1
    n_valid: int = 597      # of the 1,797 digits; the rest train
    n_test: int = 0          # optional held-out test split (taken from the train part)
    fixed_split: bool = False  # one validation/test split for every seed (SPLIT_SEED) instead of one per seed


SPLIT_SEED = 20260


@lru_cache(maxsize=1)
def digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits as (N, 1, 8, 8) floats in [0, 1] and labels."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.int64)
    return x, y


def split_indices(rng: np.random.Generator, n: int, config: TrainConfig):
    """(train, valid, test) index tensors: from ``rng`` (the run's seed stream), or with
    ``config.fixed_split`` from ``SPLIT_SEED`` (the same for every seed; ``rng`` is then not advanced)."""
    split_rng = np.random.default_rng(np.random.SeedSequence([SPLIT_SEED, 0x73706C])) if config.fixed_split else rng
    perm = torch.from_numpy(split_rng.permutation(n))
    valid = perm[: config.n_valid]
    test = perm[config.n_valid: config.n_valid + config.n_test]
    return perm[config.n_valid + config.n_test:], valid, test


def train_once(ops, seed: int, config: TrainConfig = TrainConfig()) -> dict:
    """Train once with ``seed``; returns validation (and test) accuracy, losses and time."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    x, y = digits_tensors()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6E6173]))
    train, valid, test = split_indices(rng, x.shape[0], config)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    torch.manual_seed(int(rng.integers(2**62)))
    net = TinyNet(ops, channels=config.channels, cells=config.cells)
    steps_per_epoch = int(np.ceil(len(train) / config.batch_size))
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                          weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    train_loss = float("nan")
    for _ in range(config.epochs):
        order = train[torch.randperm(len(train), generator=gen)]
        for b in range(steps_per_epoch):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            train_loss = float(loss.detach())
    net.eval()
    with torch.no_grad():
        out = {"valid_acc": float((net(x[valid]).argmax(1) == y[valid]).float().mean()),
               "train_loss": train_loss}
        if config.n_test:
            out["test_acc"] = float((net(x[test]).argmax(1) == y[test]).float().mean())
    out["seconds"] = time.perf_counter() - t0
    return out
