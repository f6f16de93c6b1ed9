"""Select the best of >= 20 RiskPO/GRPO-family checkpoints with KN and P3C vs "max of N evaluations".

Systems: the checkpoints saved by run_grid.py for one training seed (every method at every
checkpoint step). Sample = reward of one response on a uniformly drawn evaluation prompt;
under CRN every checkpoint sees the same prompt and token uniforms at replication r. Truth:
exact pass@1 of each checkpoint on the 300-instance evaluation split (no noise).

Per macroreplication m (seed (base, m)): KN (alpha, delta, CRN), P3C (KN base, CRN), and
"max of N": equal allocation with N evaluations per checkpoint (N = KN's mean samples per
system, and a fixed N), selecting the largest sample mean. Reported: PCS (true best chosen),
PGS (true mean within delta of the best), mean samples, and the selection bias
E[sample mean of the selected - its true mean] (optimism of reporting the winner's score).

    nice -n 10 python studies/riskpo/select_checkpoints.py --seed-run 0 --macroreps 30
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import time

import numpy as np
import torch

import rands
from rands.applications.riskpo.problem import PolicyProblem
from rands.validation import wilson_interval

HERE = os.path.dirname(os.path.abspath(__file__))


def _summary(name, sel, means_sel, samples, mu, delta, extra=None):
    best = mu.max()
    pcs = int(np.sum(mu[sel] == best))
    pgs = int(np.sum(mu[sel] > best - delta))
    M = len(sel)
    out = {"procedure": name, "macroreps": M, "pcs": pcs / M, "pcs_ci": wilson_interval(pcs, M),
           "pgs": pgs / M, "pgs_ci": wilson_interval(pgs, M), "mean_samples": float(np.mean(samples)),
           "mean_true_of_selected": float(mu[sel].mean()), "regret": float(best - mu[sel].mean()),
           "selection_bias": float(np.mean(means_sel - mu[sel])),
           "selection_bias_se": float(np.std(means_sel - mu[sel], ddof=1) / np.sqrt(M)) if M > 1 else None,
           "selected": [int(s) for s in sel]}
    out.update(extra or {})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed-run", type=int, default=0)
    ap.add_argument("--macroreps", type=int, default=30)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--delta", type=float, default=0.02)
    ap.add_argument("--n0", type=int, default=20)
    ap.add_argument("--fixed-n", type=int, default=300, help="N of the fixed max-of-N baseline")
    ap.add_argument("--block", type=int, default=64, help="replications per batched forward pass")
    ap.add_argument("--methods", nargs="*", default=None, help="only checkpoints of these methods")
    ap.add_argument("--out", default=os.path.join(HERE, "selection.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    paths = sorted(glob.glob(os.path.join(HERE, "checkpoints", f"*_s{args.seed_run}_step*.pt")))
    paths = [p for p in paths if not p.endswith("step0.pt")]
    if args.methods:
        paths = [p for p in paths if re.sub(r"_s\d+_step\d+\.pt$", "", os.path.basename(p)) in args.methods]
    if len(paths) < 2:
        sys.exit(f"no checkpoints for seed {args.seed_run}; run run_grid.py first")
    labels = [re.sub(r"\.pt$", "", os.path.basename(p)) for p in paths]
    t0 = time.time()
    prob = PolicyProblem(paths, labels=labels, block=args.block)
    mu = prob.true_means
    order = np.argsort(-mu)
    print(f"{prob.k} checkpoints; top-5 exact pass@1:",
          [(labels[i], round(float(mu[i]), 4)) for i in order[:5]], flush=True)
    res = {"k": prob.k, "labels": labels, "true_pass1": mu.tolist(), "args": vars(args), "results": []}
    base = (20251126, args.seed_run)
    runs = {
        "kn": dict(procedure="kn", alpha=args.alpha, delta=args.delta, n0=args.n0, crn=True),
        "p3c": dict(procedure="p3c", base="kn", alpha=args.alpha, delta=args.delta, n0=args.n0,
                    n_clusters=4),
    }
    kn_samples = None
    for name, kw in runs.items():
        kw = dict(kw)
        proc = kw.pop("procedure")
        sel, ms, ns = [], [], []
        t1 = time.time()
        for m in range(args.macroreps):
            r = rands.select(prob, proc, seed=(*base, m), **kw)
            sel.append(r.best)
            ms.append(r.means[r.best])
            ns.append(r.total_samples)
        row = _summary(name, np.array(sel), np.array(ms), np.array(ns), mu, args.delta,
                       {"params": kw, "wall_s": time.time() - t1})
        res["results"].append(row)
        print(name, {k: row[k] for k in ("pcs", "pgs", "mean_samples", "regret", "selection_bias")}, flush=True)
        if name == "kn":
            kn_samples = float(np.mean(ns))
    for label, n_per in (("max_of_N (N = KN mean / k)", max(2, int(round(kn_samples / prob.k)))),
                         (f"max_of_N (N = {args.fixed_n})", args.fixed_n)):
        sel, ms, ns = [], [], []
        for m in range(args.macroreps):
            r = rands.select(prob, "equal", seed=(*base, m), budget=n_per * prob.k, crn=True)
            sel.append(r.best)
            ms.append(r.means[r.best])
            ns.append(r.total_samples)
        row = _summary(label, np.array(sel), np.array(ms), np.array(ns), mu, args.delta, {"n_per_system": n_per})
        res["results"].append(row)
        print(label, {k: row[k] for k in ("pcs", "pgs", "mean_samples", "regret", "selection_bias")}, flush=True)
    res["wall_s"] = time.time() - t0
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
