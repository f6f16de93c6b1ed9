"""Why the 0.9M-parameter ViT does not learn in adam_vit.py: forward-gradient quality at the start of fine-tuning.

For the pre-trained vit-m and the first few-shot batch of seeds 0 and 1 (the batches every allocator sees
first, CRN), draw ``--reps`` gradient estimates per allocator at the study's budget (B = 32, q = 8 forward
passes per point, clean pass and pilots included; layer-wise LR, sigma 1e-2, antithetic) and compare with
the exact backprop gradient g of the batch-mean loss over the same (nn.Linear) parameters:
cosine(ghat, g), relative MSE ||ghat - g||^2 / ||g||^2, and the MSE ratio uniform / allocator.

    nice -n 19 python studies/flops/adam_vit_diag.py --reps 20     # -> adam_vit_diag.json / .md (~5 min)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOCS = ("uniform", "loss", "neyman", "gaussian")


def diag(seed: int, reps: int, batch: int = 32, q: int = 8) -> dict:
    from rands.applications.flops.data import few_shot, pretrained
    from rands.applications.flops.train import child_generators, make_optimizer
    torch.set_num_threads(1)
    out = {}
    for alloc in ALLOCS:
        gdata, gpert = child_generators(seed)
        net = pretrained("vit-m")
        x, y = few_shot(16, gdata)
        idx = torch.randperm(x.shape[0], generator=gdata)[:batch]  # train_run's first batch
        xb, yb = x[idx], y[idx]

        def closure(rows, xb=xb, yb=yb, net=net):
            rows = torch.arange(xb.shape[0]) if rows is None else rows
            return nn.functional.cross_entropy(net(xb[rows]), yb[rows], reduction="none")

        opt = make_optimizer(net, {"allocator": alloc, "base": "adam", "lr": 1e-3, "queries_per_point": q},
                             batch, gpert)
        targets = opt.estimator.targets()
        with torch.enable_grad():
            loss = closure(None).mean()
            g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, targets)]).double()
        t0 = time.time()
        cos, rel = [], []
        for _ in range(reps):
            gh = torch.cat([t.reshape(-1) for t in opt.estimate(closure, batch)[0]]).double()
            cos.append(float(gh @ g / (gh.norm() * g.norm())))
            rel.append(float((gh - g).pow(2).sum() / g.pow(2).sum()))
        out[alloc] = {"cos_mean": float(np.mean(cos)), "cos_se": float(np.std(cos, ddof=1) / math.sqrt(reps)),
                      "rel_mse": float(np.mean(rel)), "rel_mse_se": float(np.std(rel, ddof=1) / math.sqrt(reps)),
                      "dim": int(g.numel()), "grad_norm": float(g.norm()), "wall_s": time.time() - t0}
        print(seed, alloc, {k: round(v, 4) for k, v in out[alloc].items()}, flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    a = ap.parse_args(argv)
    res = {"command": f"python studies/flops/adam_vit_diag.py --reps {a.reps}", "reps": a.reps,
           "batch": 32, "queries_per_point": 8, "seeds": a.seeds, "by_seed": {}}
    for s in a.seeds:
        res["by_seed"][str(s)] = diag(s, a.reps)
    lines = ["| seed | allocator | cosine(ghat, g) +- se | relative MSE +- se | MSE uniform / allocator |",
             "|---|---|---|---|---|"]
    for s, d in res["by_seed"].items():
        for al, v in d.items():
            ratio = d["uniform"]["rel_mse"] / v["rel_mse"]
            lines.append(f"| {s} | {al} | {v['cos_mean']:.4f} +- {v['cos_se']:.4f} | "
                         f"{v['rel_mse']:.1f} +- {v['rel_mse_se']:.1f} | {ratio:.2f} |")
    with open(os.path.join(HERE, "adam_vit_diag.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(HERE, "adam_vit_diag.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
