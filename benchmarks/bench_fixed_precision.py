"""Benchmark: KN and KT on the slippage configuration with k = 10^4 (delta = 0.5, n0 = 20).

Usage: nice -n 10 python benchmarks/bench_fixed_precision.py [--k 10000] [--reps 3] [--json out.json]
Prints wall time and total samples per run (serial executor, one core). The
first run of each procedure includes numba compilation (reported separately).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import rands
from rands.procedures.fixed_precision.kn import KN
from rands.procedures.fixed_precision.kt import KT


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    prob = rands.problems.make("slippage", k=args.k, delta=0.5, sigma=1.0)
    procs = {
        "KN": KN(alpha=0.05, delta=0.5, n0=20),
        "KN crn": KN(alpha=0.05, delta=0.5, n0=20, crn=True),
        "KT (g=20, p=1)": KT(alpha=0.05, delta=0.5, n0=20, g=20, n_groups=1),
        "KT (g=20, p=8)": KT(alpha=0.05, delta=0.5, n0=20, g=20, n_groups=8),
        "KT crn (g=20, p=8)": KT(alpha=0.05, delta=0.5, n0=20, g=20, n_groups=8, crn=True),
    }
    # warm-up on a small problem so numba compilation is not timed
    small = rands.problems.make("slippage", k=50, delta=0.5)
    for proc in procs.values():
        rands.select(small, proc, seed=0)
    rows = []
    for name, proc in procs.items():
        walls, totals, correct = [], [], 0
        for rep in range(args.reps):
            t0 = time.perf_counter()
            r = rands.select(prob, proc, seed=(2024, rep))
            walls.append(time.perf_counter() - t0)
            totals.append(r.total_samples)
            correct += int(r.best == 0)
        row = {"procedure": name, "k": args.k, "reps": args.reps, "wall_mean_s": float(np.mean(walls)),
               "wall_min_s": float(np.min(walls)), "total_samples_mean": float(np.mean(totals)),
               "samples_per_system": float(np.mean(totals)) / args.k, "correct": correct}
        rows.append(row)
        print(f"{name:20s} k={args.k}  wall {row['wall_mean_s']:7.2f} s (min {row['wall_min_s']:.2f})  "
              f"total samples {row['total_samples_mean']:12.0f}  ({row['samples_per_system']:.1f}/system)  "
              f"correct {correct}/{args.reps}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
