"""One seeded forward-gradient fine-tuning run on few-shot digits.

Common random numbers: the run's seed fixes the few-shot subset, the minibatch
order and the perturbation stream through separate child seeds
(``numpy.random.SeedSequence(seed).spawn``), so two settings run with the same
seed see the same data in the same order and draw perturbations from the same
stream (only their consumption differs).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from rands.errors import ParameterError

from .allocators import make_allocator
from .data import accuracy, digits_split, few_shot, pretrained
from .estimators import LayerwiseLR, SPSA
from .optim import ForwardGradient

__all__ = ["DEFAULTS", "train_run", "make_optimizer", "child_generators"]

#: defaults of a setting; a setting dict overrides any of them
DEFAULTS: dict[str, Any] = {
    "estimator": "lr", "allocator": "uniform", "allocator_params": {}, "queries_per_point": 8,
    "lr": None, "sigma": 1e-2, "eps": 1e-3, "antithetic": True, "baseline": "none", "base": "sgd", "trainable": "all",
}
#: default SGD learning rates per estimator, tuned by hand on the uniform allocator (MLP, seed 0)
DEFAULT_LR = {"lr": 0.05, "spsa": 0.02}


def child_generators(seed: int | Sequence[int]) -> tuple[torch.Generator, torch.Generator]:
    """(data generator, perturbation generator) from one seed; never seeds by addition."""
    kids = np.random.SeedSequence(seed).spawn(2)
    return tuple(torch.Generator().manual_seed(int(k.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
                 for k in kids)


def freeze(net: nn.Module, trainable: str) -> None:
    """Fine-tune "all" parameters, only the "head", or the "last" block and the head (ViT)."""
    if trainable == "all":
        return
    if trainable not in ("head", "last"):
        raise ParameterError(f"trainable must be 'all', 'head' or 'last', got {trainable!r}")
    keep = {"head", "fc2"} if trainable == "head" else {"head", "fc2", "ln"}
    for name, p in net.named_parameters():
        top = name.split(".")[0]
        last_block = trainable == "last" and name.startswith(f"blocks.{len(getattr(net, 'blocks', [])) - 1}.")
        p.requires_grad_(top in keep or last_block)


def make_optimizer(model: nn.Module, setting: dict, batch: int, gen: torch.Generator) -> ForwardGradient:
    s = {**DEFAULTS, **setting}
    if s["estimator"] == "lr":
        est = LayerwiseLR(model, sigma=s["sigma"], antithetic=s["antithetic"], baseline=s["baseline"])
        params = est.targets()
    elif s["estimator"] == "spsa":
        params = [p for p in model.parameters() if p.requires_grad]
        est = SPSA(params, eps=s["eps"])
    else:
        raise ParameterError(f"estimator must be 'lr' or 'spsa', got {s['estimator']!r}")
    alloc = make_allocator(s["allocator"], **s["allocator_params"])
    lr = s["lr"] if s["lr"] is not None else DEFAULT_LR[s["estimator"]]
    return ForwardGradient(params, estimator=est, allocator=alloc, queries=int(s["queries_per_point"]) * batch,
                           lr=lr, base=s["base"], generator=gen)


def train_run(setting: dict, seed: int | Sequence[int], *, model: str = "mlp", steps: int = 150,
              batch: int = 32, shots: int = 16, eval_every: int = 10, callback=None) -> dict:
    """Fine-tune a pre-trained ``model`` with forward gradients; returns curves and final accuracy.

    ``callback(step, model, opt, xb, yb)`` (optional) runs before each update (diagnostics).
    Returns {"final_acc", "steps", "passes", "acc"} with the test accuracy every
    ``eval_every`` steps against cumulative forward passes (queries + clean passes).
    """
    torch.set_num_threads(1)
    gdata, gpert = child_generators(seed)
    net = pretrained(model)
    freeze(net, {**DEFAULTS, **setting}["trainable"])
    x, y = few_shot(shots, gdata)
    _, _, xte, yte = digits_split()
    opt = make_optimizer(net, setting, batch, gpert)
    log_steps, log_passes, log_acc = [0], [0], [accuracy(net, xte, yte)]
    order = torch.empty(0, dtype=torch.long)
    for t in range(1, steps + 1):
        if order.numel() < batch:
            order = torch.cat([order, torch.randperm(x.shape[0], generator=gdata)])
        idx, order = order[:batch], order[batch:]
        xb, yb = x[idx], y[idx]

        def closure(rows, xb=xb, yb=yb):
            if rows is None:
                return nn.functional.cross_entropy(net(xb), yb, reduction="none")
            return nn.functional.cross_entropy(net(xb[rows]), yb[rows], reduction="none")

        if callback is not None:
            callback(t, net, opt, xb, yb, closure)
        opt.step(closure, batch_size=batch)
        if t % eval_every == 0 or t == steps:
            log_steps.append(t)
            log_passes.append(opt.forward_passes)
            log_acc.append(accuracy(net, xte, yte))
    return {"final_acc": log_acc[-1], "steps": log_steps, "passes": log_passes, "acc": log_acc}
