"""CPU-scale RiskPO reproduction on Countdown-3: every method x seed, one JSON per run.

Usage (from the repository root):
    nice -n 10 python studies/riskpo/run_grid.py --steps 200 --seeds 0 1 2 3 4 --worker 0 --workers 2
Runs are ordered seed-major (all methods for seed 0 first) and skipped if their JSON
exists, so the grid resumes and can be split across workers (run i goes to worker i % workers).
Checkpoints at --ckpt-steps go to studies/riskpo/checkpoints/ (git-ignored).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from rands.applications.riskpo import policy as P
from rands.applications.riskpo import task as T
from rands.applications.riskpo import train as TR

HERE = os.path.dirname(os.path.abspath(__file__))


def init_policy(path: str, train_split: T.Split) -> P.Policy:
    """The shared SFT warm start (cached: every method and seed starts from the same weights)."""
    if os.path.exists(path):
        return P.load(path)
    pol = P.warm_start(train_split, seed=0, epochs=20, noise=0.1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    P.save(pol, path + ".tmp")
    os.replace(path + ".tmp", path)
    return pol


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", nargs="+", default=list(TR.METHODS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--ckpt-steps", nargs="*", type=int, default=[50, 100, 150, 200])
    ap.add_argument("--worker", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "runs"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    train_split, eval_split = T.make_splits(seed=0, eval_per_bucket=100)
    init = init_policy(os.path.join(HERE, "checkpoints", "init.pt"), train_split)
    jobs = [(s, m) for s in args.seeds for m in args.methods]
    for n, (seed, method) in enumerate(jobs):
        if n % args.workers != args.worker:
            continue
        path = os.path.join(args.out, f"{method}_s{seed}.json")
        if os.path.exists(path):
            continue
        cfg = TR.TrainConfig(method=method, seed=seed, steps=args.steps, lr=args.lr, eval_every=args.eval_every,
                             checkpoint_steps=tuple(args.ckpt_steps),
                             checkpoint_dir=os.path.join(HERE, "checkpoints"))
        t0 = time.time()
        _, hist = TR.train(cfg, init, train_split, eval_split, log=lambda s: print(s, flush=True))
        TR.save_history(hist, path + ".tmp")
        os.replace(path + ".tmp", path)
        print(f"done {method} seed {seed} in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
