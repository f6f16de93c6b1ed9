"""Fixed-budget study: PCS of equal allocation, OCBA, EFG, EFG+ and FBKT.

Part A: PCS vs budget N = c k (k = 100) on the slippage configuration (delta = 0.5,
        sigma = 1) and on rands' "random" problem (means N(0, 1), seed 0).
Part B: PCS at a linear budget N = 20 k for k = 100, 1000, 10^4 on the slippage
        configuration: FBKT (and the greedy procedures) should stay flat, equal allocation
        and OCBA decay (Hong, Jiang & Zhong 2022; Li, Fan & Hong 2025).

PCS with Wilson 95% intervals from ``rands.validate`` (macroreplication m uses seed (s, m)).

    python studies/engine_validation/fixed_budget_study.py [--reps 200] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import rands

HERE = os.path.dirname(os.path.abspath(__file__))

PROCS = {
    "equal": lambda k: {},
    "ocba": lambda k: {"n0": 4, "increment": max(20, k // 10)},
    "efg": lambda k: {"n0": 4},
    "efg+": lambda k: {"n0": 4},
    "fbkt": lambda k: {"n0": 4, "phi": 3},
}


def run_cell(problem, pp, name, k, c, reps, seed, pgs_delta):
    t0 = time.perf_counter()
    v = rands.validate(problem, name, macroreps=reps, seed=seed, problem_params=pp,
                       budget=c * k, pgs_delta=pgs_delta, **PROCS[name](k))
    row = {"problem": problem, "k": k, "c": c, "budget": c * k, "procedure": name,
           "pcs": v.pcs, "pcs_ci": list(v.pcs_ci), "pgs": v.pgs, "pgs_ci": list(v.pgs_ci),
           "mean_samples": v.mean_samples, "reps": reps, "seconds": time.perf_counter() - t0}
    print(f"{problem:9s} k={k:6d} c={c:3d} {name:6s} PCS {v.pcs:.3f} [{v.pcs_ci[0]:.3f}, "
          f"{v.pcs_ci[1]:.3f}] samples {v.mean_samples:.0f} ({row['seconds']:.1f} s)", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--parts", default="A,B")
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the plot and table from the recorded JSON")
    args = ap.parse_args()
    if args.replot:
        with open(os.path.join(args.out, "fixed_budget_results.json")) as f:
            rows = json.load(f)["rows"]
        plot(rows, os.path.join(args.out, "fixed_budget_pcs.png"))
        table(rows, os.path.join(args.out, "fixed_budget_results.md"))
        return
    rows = []
    parts = args.parts.split(",")
    if "A" in parts:
        for problem, pp, pgs in (("slippage", {"k": 100, "delta": 0.5}, 0.5),
                                 ("random", {"k": 100}, 0.1)):
            for c in (8, 16, 32, 64):
                for name in PROCS:
                    rows.append({"part": "A", **run_cell(problem, pp, name, 100, c, args.reps,
                                                         (2024, c), pgs)})
    if "B" in parts:
        for k in (100, 1000, 10_000):
            for name in PROCS:
                rows.append({"part": "B", **run_cell("slippage", {"k": k, "delta": 0.5}, name, k, 20,
                                                     args.reps, (2025, k), 0.5)})
    path = os.path.join(args.out, "fixed_budget_results.json")
    with open(path, "w") as f:
        json.dump({"command": "python studies/engine_validation/fixed_budget_study.py "
                              f"--reps {args.reps}", "rows": rows}, f, indent=1)
    plot(rows, os.path.join(args.out, "fixed_budget_pcs.png"))
    table(rows, os.path.join(args.out, "fixed_budget_results.md"))
    print("wrote", path)


def table(rows, path):
    """Markdown tables: PCS [Wilson 95%] per procedure."""
    lines = []
    names = list(PROCS)
    for part, problem, xkey, title in (("A", "slippage", "c", "Part A, slippage (k = 100, delta = 0.5): PCS vs c = N/k"),
                                       ("A", "random", "c", "Part A, random means (k = 100): PCS vs c = N/k"),
                                       ("B", "slippage", "k", "Part B, slippage (delta = 0.5), N = 20 k: PCS vs k")):
        sel = [r for r in rows if r["part"] == part and r["problem"] == problem]
        if not sel:
            continue
        xs = sorted({r[xkey] for r in sel})
        lines += [f"### {title}", "", f"| {xkey} | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for x in xs:
            cells = []
            for n in names:
                r = [q for q in sel if q[xkey] == x and q["procedure"] == n]
                cells.append(f"{r[0]['pcs']:.3f} [{r[0]['pcs_ci'][0]:.2f}, {r[0]['pcs_ci'][1]:.2f}]"
                             if r else "")
            lines.append(f"| {x} | " + " | ".join(cells) + " |")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    parts = [("A", "slippage"), ("A", "random"), ("B", "slippage")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (part, problem) in zip(axes, parts):
        sel = [r for r in rows if r["part"] == part and r["problem"] == problem]
        if not sel:
            continue
        xkey = "c" if part == "A" else "k"
        for name in PROCS:
            pts = sorted((r[xkey], r["pcs"], r["pcs_ci"]) for r in sel if r["procedure"] == name)
            if not pts:
                continue
            x = np.array([p[0] for p in pts])
            y = np.array([p[1] for p in pts])
            lo = np.array([p[2][0] for p in pts])
            hi = np.array([p[2][1] for p in pts])
            ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], marker="o",
                        capsize=3, label=name)
        ax.set_xscale("log", base=2 if part == "A" else 10)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("PCS")
        if part == "A":
            ax.set_xlabel("budget per system c = N / k (k = 100)")
            ax.set_title(f"PCS vs budget, {problem}")
        else:
            ax.set_xlabel("k (budget N = 20 k)")
            ax.set_title("PCS vs k at N = 20 k, slippage (delta = 0.5)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
