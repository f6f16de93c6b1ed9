"""Checkpoint selection with checkpoints from several training seeds, >= 100 macroreplications, PGS.

Systems: SFT policies (``policy.warm_start``) from 3 training seeds x 3 lengths (1, 3, 8 epochs) =
9 checkpoints; sample = reward of one response on a uniformly drawn held-out prompt, CRN; truth =
exact pass@1 on the 300-instance evaluation split. Two settings:
  "all": all 9 checkpoints, delta 0.02 (the indifference zone may fail: then only PGS is guaranteed);
  "iz":  the best checkpoint and every checkpoint at least delta below it (the IZ holds by
         construction, so KN's PCS >= 1 - alpha is guaranteed).
Per setting and macroreplication: KN (alpha 0.05, delta, n0 20, CRN) and max-of-N at KN's mean budget.
Run: nice -n 19 python studies/riskpo/select_sft_seeds.py --macroreps 100   (minutes; resumable per setting)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import rands
from rands.applications.riskpo import policy as P
from rands.applications.riskpo import task as T
from rands.applications.riskpo.problem import PolicyProblem
from rands.validation import wilson_interval

HERE = os.path.dirname(os.path.abspath(__file__))


def _row(name, sel, samples, mu, delta, M):
    best = mu.max()
    pcs, pgs = int(np.sum(mu[sel] == best)), int(np.sum(mu[sel] > best - delta))
    return {"procedure": name, "macroreps": M, "pcs": pcs / M, "pcs_ci": list(wilson_interval(pcs, M)),
            "pgs": pgs / M, "pgs_ci": list(wilson_interval(pgs, M)), "mean_samples": float(np.mean(samples)),
            "regret": float(best - mu[sel].mean())}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--macroreps", type=int, default=100)
    ap.add_argument("--delta", type=float, default=0.02)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--out", default=os.path.join(HERE, "selection_sft_seeds.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    tr, _ = T.make_splits(seed=0)
    pols, labels = [], []
    for seed in (0, 1, 2):
        for ep in (1, 3, 8):
            pols.append(P.warm_start(tr, seed=seed, epochs=ep, noise=0.1))
            labels.append(f"sft_s{seed}_e{ep}")
    prob_all = PolicyProblem(pols, labels=labels)
    mu_all = prob_all.true_means
    print("exact pass@1:", dict(zip(labels, np.round(mu_all, 4))), f"{time.time() - t0:.0f} s", flush=True)
    res = json.load(open(args.out)) if os.path.exists(args.out) else {}
    res.update({"labels": labels, "true_pass1": mu_all.tolist(), "args": vars(args),
                "command": "nice -n 19 python studies/riskpo/select_sft_seeds.py --macroreps 100"})
    b = int(np.argmax(mu_all))
    keep_iz = [i for i in range(len(pols)) if i == b or mu_all[i] <= mu_all[b] - args.delta]
    for setting, keep in (("all", list(range(len(pols)))), ("iz", keep_iz)):
        if setting in res.get("settings", {}):
            continue
        prob = prob_all if setting == "all" else PolicyProblem([pols[i] for i in keep],
                                                               labels=[labels[i] for i in keep])
        mu = prob.true_means
        srt = np.sort(mu)[::-1]
        info = {"systems": [labels[i] for i in keep], "gap_best_second": float(srt[0] - srt[1]),
                "n_within_delta": int(np.sum(mu > mu.max() - args.delta)), "iz_holds": bool(srt[0] - srt[1] >= args.delta)}
        t1 = time.time()
        sel, ns = [], []
        for m in range(args.macroreps):
            r = rands.select(prob, "kn", seed=(20261202, m), alpha=args.alpha, delta=args.delta, n0=20, crn=True)
            sel.append(r.best)
            ns.append(r.total_samples)
        rows = [_row("kn", np.array(sel), ns, mu, args.delta, args.macroreps)]
        n_per = max(2, int(round(np.mean(ns) / prob.k)))
        sel2, ns2 = [], []
        for m in range(args.macroreps):
            r = rands.select(prob, "equal", seed=(20261202, m), budget=n_per * prob.k, crn=True)
            sel2.append(r.best)
            ns2.append(r.total_samples)
        rows.append(_row(f"max_of_N (N = {n_per})", np.array(sel2), ns2, mu, args.delta, args.macroreps))
        info.update({"results": rows, "wall_s": time.time() - t1})
        res.setdefault("settings", {})[setting] = info
        print(setting, json.dumps(info), flush=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    print("wrote", args.out, f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
