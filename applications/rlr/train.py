"""Fine-tuning loop (Adam on any estimator) with a cost ledger and sample-quality diagnostics."""
from __future__ import annotations

import time

import numpy as np
import torch

from rands.errors import check_float, check_int

from .estimator import Estimator, sample_chain
from .plans import RLRPlan
from .schedule import DDIMSchedule, NoiseBank

__all__ = ["finetune", "evaluate", "frechet_distance"]


def frechet_distance(fa: np.ndarray, fb: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (the FID formula)."""
    from scipy import linalg
    ma, mb = fa.mean(0), fb.mean(0)
    ca, cb = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    ridge = 1e-6 * max(np.trace(ca), np.trace(cb), 1e-12) / ca.shape[0] * np.eye(ca.shape[0])
    covmean = linalg.sqrtm((ca + ridge) @ (cb + ridge))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(((ma - mb) ** 2).sum() + np.trace(ca + cb - 2 * covmean))


@torch.no_grad()
def evaluate(model, schedule: DDIMSchedule, noise: NoiseBank, rewards: dict, classifier=None,
             base_features: np.ndarray | None = None) -> dict:
    """Mean of each reward on a fixed noise bank; diversity (mean pairwise L2 of x_0); class entropy,
    feature spread and Frechet distance to the base model's features when a classifier is given."""
    x0 = sample_chain(model, schedule, noise).x0
    out = {name: float(r(x0).mean()) for name, r in rewards.items()}
    flat = x0.flatten(1)
    d = torch.cdist(flat, flat)
    n = flat.shape[0]
    out["diversity_l2"] = float(d.sum() / (n * (n - 1)))
    # fraction of pixels far outside the data range [-1, 1] (adversarial / off-manifold samples)
    out["out_of_range"] = float((x0.abs() > 1.2).double().mean())
    if classifier is not None:
        feats = classifier.features(x0)
        pred = classifier.head(feats).argmax(1)
        p = torch.bincount(pred, minlength=10).double() / n
        out["class_entropy"] = float(-(p[p > 0] * p[p > 0].log()).sum())
        f = feats.double().numpy()
        out["feature_spread"] = float(np.trace(np.cov(f, rowvar=False)))
        if base_features is not None:
            out["frechet_to_base"] = frechet_distance(f, base_features)
        out["_features"] = f
    return out


def finetune(model, schedule: DDIMSchedule, reward, estimator: Estimator, *, updates: int, batch: int,
             lr: float, seed: int, shape=(64,), ppo_epochs: int = 1, clip_grad: float | None = 1.0,
             eval_noise: NoiseBank | None = None, eval_rewards: dict | None = None, eval_every: int = 10,
             classifier=None, base_features=None, chunk="auto") -> dict:
    """Adam ascent on E[reward] with ``estimator``; returns the history (JSON-able).

    Ledger per evaluation point: ``samples`` (chains drawn), ``network_calls`` (denoiser
    evaluations, with graph or not, per chain summed), ``backward_steps`` (steps backpropagated),
    ``wall`` (seconds, excluding evaluation). Gradients use :meth:`Estimator.gradient` (one term's graph
    at a time; ``chunk`` as there).
    """
    check_int("updates", updates, low=1)
    check_int("batch", batch, low=1)
    check_float("lr", lr, low=0, low_open=True)
    gen = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    hist: dict = {"update": [], "samples": [], "network_calls": [], "backward_steps": [], "wall": [],
                  "train_reward": []}
    ledger = {"samples": 0, "network_calls": 0, "backward_steps": 0, "wall": 0.0}
    if isinstance(estimator.plan, RLRPlan) and estimator.plan.j_rule == "softmax":
        from .plans import StepNorms
        estimator.plan.norms = StepNorms(schedule.num_steps)

    def do_eval(u: int, train_r: float) -> None:
        hist["update"].append(u)
        for k in ("samples", "network_calls", "backward_steps", "wall"):
            hist[k].append(ledger[k])
        hist["train_reward"].append(train_r)
        if eval_noise is not None:
            ev = evaluate(model, schedule, eval_noise, eval_rewards or {"reward": reward}, classifier,
                          base_features)
            ev.pop("_features", None)
            for k, v in ev.items():
                hist.setdefault("eval_" + k, []).append(v)

    do_eval(0, float("nan"))
    for u in range(1, updates + 1):
        t0 = time.perf_counter()
        noise = NoiseBank.draw(schedule.num_steps, batch, shape, gen)
        terms = estimator.plan.sample(rng, schedule.num_steps)
        traj, R = None, None
        for _ in range(ppo_epochs):
            opt.zero_grad(set_to_none=True)
            # memory-saving form: each term backpropagated and freed before the next is built
            _, info = estimator.gradient(model, schedule, noise, reward, rng=rng, terms=terms, traj=traj, R=R,
                                         generator=gen, chunk=chunk, accumulate=True)
            traj, R = info["traj"], info["R"]
            params = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
            if params:
                for p in params:
                    p.grad.neg_()  # ascent on E[reward] = descent on -S
                if clip_grad is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip_grad)
                opt.step()
            c = info["cost"]
            ledger["network_calls"] += batch * c["graph"]
            ledger["backward_steps"] += batch * c["graph"]
        ledger["network_calls"] += batch * schedule.num_steps
        ledger["samples"] += batch
        ledger["wall"] += time.perf_counter() - t0
        if u % eval_every == 0 or u == updates:
            do_eval(u, float(R.mean()))
    hist["ledger"] = dict(ledger)
    return hist
