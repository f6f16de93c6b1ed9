"""RL training loop for Countdown-3 with any advantage estimator, plus evaluation metrics.

One step: draw ``prompts_per_step`` training questions, sample G responses each at
temperature 1, score them (binary verifiable reward), compute per-response
advantages with the method's estimator, and take ``minibatches`` Adam steps on the
PPO-clip surrogate (token-mean; the first mini-batch is on-policy, later ones are
slightly off-policy, as in verl). No KL, no entropy bonus.

Metrics: token entropy (mean over response positions of the full next-token entropy
on sampled responses), unbiased pass@k for k in {1, 4, 16, 64} per difficulty bucket,
coverage (>= 1 correct in n samples) and the number of distinct correct expressions
per instance (and per solved instance).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ...errors import ParameterError
from . import policy as P
from . import task as T
from .advantages import AdvantageEstimator, make_estimator
from .losses import ppo_clip_loss
from .metrics import pass_at_k

# method name -> (estimator name, estimator params, loss aggregation)
METHODS: dict[str, tuple[str, dict, str]] = {
    "grpo": ("grpo", {}, "token-mean"),
    "drgrpo": ("drgrpo", {}, "seq-mean-token-sum-norm"),
    "riskpo": ("riskpo", {"quantiles": "bundle"}, "token-mean"),
    "riskpo_tracked": ("riskpo", {"quantiles": "tracked"}, "token-mean"),
    "riskpo_b1": ("riskpo", {"quantiles": "bundle", "bundle_size": 1}, "token-mean"),
    "nsr": ("nsr", {"c": 0.5}, "token-mean"),
    "rsgrpo": ("rsgrpo", {"beta": 2.0}, "token-mean"),
}
KS = (1, 4, 16, 64)


@dataclass
class TrainConfig:
    method: str = "grpo"
    seed: int = 0
    steps: int = 200
    prompts_per_step: int = 40
    group_size: int = 8
    lr: float = 1e-3
    minibatches: int = 2
    clip: float = 0.2
    temperature: float = 1.0
    eval_every: int = 25
    eval_per_bucket_curve: int = 50
    eval_samples_curve: int = 32
    eval_samples_final: int = 128
    checkpoint_steps: tuple[int, ...] = ()
    checkpoint_dir: str | None = None
    estimator_params: dict = field(default_factory=dict)


def build_estimator(cfg: TrainConfig) -> tuple[AdvantageEstimator, str]:
    if cfg.method not in METHODS:
        raise ParameterError(f"unknown method {cfg.method!r}; valid: {sorted(METHODS)}")
    name, params, agg = METHODS[cfg.method]
    return make_estimator(name, **{**params, **cfg.estimator_params}), agg


def rollout(pol: P.Policy, split: T.Split, idx: np.ndarray, n: int, gen: torch.Generator,
            temperature: float = 1.0):
    """n responses for each instance idx (instance-major); returns prompts, responses, old log-probs, rewards."""
    prompts = torch.as_tensor(split.prompts(idx)).repeat_interleave(n, 0)
    resp, lp = pol.sample(prompts, gen, temperature)
    rew = T.reward(resp.numpy(), np.repeat(split.digits[idx], n, 0), np.repeat(split.targets[idx], n))
    return prompts, resp, lp, rew


@torch.no_grad()
def evaluate(pol: P.Policy, split: T.Split, n: int, seed: int, ks=KS) -> dict:
    """Per-bucket pass@k (unbiased, k <= n), coverage, distinct correct solutions, token entropy."""
    gen = torch.Generator().manual_seed(int(seed))
    idx = np.arange(len(split))
    prompts, resp, _, rew = rollout(pol, split, idx, n, gen)
    ent = []
    for s in range(0, prompts.shape[0], 8192):
        ent.append(pol.log_probs(prompts[s:s + 8192], resp[s:s + 8192])[1].mean(1))
    ent = torch.cat(ent).reshape(len(idx), n).mean(1).numpy()
    r = rew.reshape(len(idx), n)
    c = r.sum(1).astype(np.int64)
    codes = T.response_code(resp.numpy()).reshape(len(idx), n)
    distinct = np.array([len(np.unique(codes[i][r[i] > 0])) for i in idx])
    out = {"n_samples": n}
    for bname, sel in [("all", np.ones(len(idx), bool))] + [(b, split.bucket == k) for k, b in enumerate(T.BUCKETS)]:
        d = {f"pass@{k}": float(pass_at_k(n, c[sel], k).mean()) for k in ks if k <= n}
        d["coverage"] = float((c[sel] > 0).mean())
        d["distinct_correct"] = float(distinct[sel].mean())
        solved = sel & (c > 0)
        d["distinct_per_solved"] = float(distinct[solved].mean()) if solved.any() else 0.0
        d["entropy"] = float(ent[sel].mean())
        d["n_instances"] = int(sel.sum())
        out[bname] = d
    return out


def train(cfg: TrainConfig, init: P.Policy, train_split: T.Split, eval_split: T.Split,
          log=None) -> tuple[P.Policy, dict]:
    """Train a copy of ``init`` with ``cfg``; returns the policy and a JSON-able history."""
    torch.manual_seed(cfg.seed)
    pol = P.Policy(init.config)
    pol.load_state_dict(init.state_dict())
    est, agg = build_estimator(cfg)
    opt = torch.optim.Adam(pol.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, 0xA11]).generate_state(1)[0]))
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xB0B]))
    rng_eval = np.random.default_rng(np.random.SeedSequence([0, 0xE7A]))  # same curve subset for every run
    members = [np.flatnonzero(eval_split.bucket == k) for k in range(3)]
    curve_idx = np.sort(np.concatenate([rng_eval.choice(m, min(cfg.eval_per_bucket_curve, len(m)), replace=False)
                                        for m in members]))
    curve_split = eval_split.subset(curve_idx)
    hist = {"config": asdict(cfg), "steps": [], "train": [], "curve": []}
    mask = torch.ones(cfg.prompts_per_step * cfg.group_size, T.RESPONSE_LEN)
    t0 = time.perf_counter()
    for step in range(cfg.steps + 1):
        if step % cfg.eval_every == 0 or step == cfg.steps:
            ev = evaluate(pol, curve_split, cfg.eval_samples_curve, seed=10_000 + step)
            hist["curve"].append({"step": step, **ev})
            if log:
                log(f"[{cfg.method} s{cfg.seed}] step {step} pass@1 {ev['all']['pass@1']:.3f} "
                    f"hard pass@16 {ev['hard'].get('pass@16', float('nan')):.3f} H {ev['all']['entropy']:.3f} "
                    f"({time.perf_counter() - t0:.0f}s)")
        if cfg.checkpoint_dir and step in cfg.checkpoint_steps:
            os.makedirs(cfg.checkpoint_dir, exist_ok=True)
            P.save(pol, os.path.join(cfg.checkpoint_dir, f"{cfg.method}_s{cfg.seed}_step{step}.pt"))
        if step == cfg.steps:
            break
        qidx = rng.choice(len(train_split), cfg.prompts_per_step, replace=False)
        prompts, resp, old_lp, rew = rollout(pol, train_split, qidx, cfg.group_size, gen, cfg.temperature)
        qids = np.repeat(qidx, cfg.group_size)  # stable question ids = dataset index
        res = est(rew, qids)
        adv = res.advantages.to(torch.float32)
        perm = torch.as_tensor(rng.permutation(len(rew)))
        ents, infos = [], []
        for mb in torch.chunk(perm, cfg.minibatches):
            lp, ent = pol.log_probs(prompts[mb], resp[mb])
            loss, info = ppo_clip_loss(lp, old_lp[mb], adv[mb], mask[mb], clip_low=cfg.clip, clip_high=cfg.clip,
                                       agg=agg, max_len=T.RESPONSE_LEN)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ents.append(float(ent.detach().mean()))
            infos.append(info)
        rec = {"step": step, "reward": float(rew.mean()), "entropy": float(np.mean(ents)),
               "clip_frac": float(np.mean([i["clip_frac"] for i in infos])),
               **{k: float(v) for k, v in res.info.items()}}
        hist["train"].append(rec)
    hist["final"] = evaluate(pol, eval_split, cfg.eval_samples_final, seed=99_999)
    hist["estimator_state"] = est.state_dict()
    hist["wall_s"] = time.perf_counter() - t0
    return pol, hist


def save_history(hist: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(hist, f)
