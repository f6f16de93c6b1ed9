"""TPMax-57,624 (flow line, L = 50) with PyPRS's published KT and FBKT parameters, 2 workers.

    nice -n 10 python studies/parallel/tpmax.py --macroreps 3 --out studies/parallel/tpmax57624.json

Appends one record per run to the JSON (so whatever finished is kept): total
samples, selected alternative (s1,s2,s3|b2,b3), wall time, worker simulation
time, utilization and core-seconds per sample (workers x wall / samples),
next to PyPRS's figures (48 cores, 100 macroreplications; reference notes §3).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import rands
from rands.parallel import make_executor

RUNS = {
    "kt": {"alpha": 0.05, "delta": 0.1, "g": 20, "n0": 20, "crn": True, "n_groups": 2},
    "fbkt": {"budget": 5_070_912, "n0": 8, "phi": 3, "crn": True, "n_groups": 2},
}
PYPRS = {   # PyPRS 1.0.0 docs, TPMax-57,624, p = 48, 100 macroreplications
    "kt": {"pcs": 1.00, "total_samples": 6_170_721, "sim_time_s": 3358.4, "wall_s": 89.6, "utilization": 0.782},
    "fbkt": {"pcs": 1.00, "total_samples": 4_704_528, "sim_time_s": 2621.6, "wall_s": 57.8, "utilization": 0.946},
}
for v in PYPRS.values():
    v["core_seconds_per_sample"] = v["wall_s"] * 48 / v["total_samples"]
PYPRS_TOP = {"(17,17,16|21,29)": {"gsp": 45, "kt": 31, "fbkt": 21},
             "(17,17,16|20,30)": {"gsp": 38, "kt": 34, "fbkt": 21}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procedures", default="kt,fbkt")
    ap.add_argument("--macroreps", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="studies/parallel/tpmax57624.json")
    args = ap.parse_args()
    data = {"problem": {"name": "flowline", "L": 50}, "pyprs": PYPRS, "pyprs_top": PYPRS_TOP,
            "command": " ".join(sys.argv), "runs": []}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            data["runs"] = json.load(fh).get("runs", [])
    ex = make_executor("processes", args.workers)
    problem = rands.problems.make("flowline", L=50)
    for m in range(args.macroreps):
        for name in args.procedures.split(","):
            if any(r["procedure"] == name and r["macrorep"] == m for r in data["runs"]):
                continue
            ex.reset_accounting()
            t0 = time.perf_counter()
            res = rands.select(problem, name, seed=(2024, m), executor=ex, **RUNS[name])
            wall = time.perf_counter() - t0
            acc = res.accounting
            rec = {"procedure": name, "macrorep": m, "seed": [2024, m], "params": RUNS[name],
                   "total_samples": res.total_samples, "best": res.best, "best_label": res.best_label,
                   "best_mean_estimate": res.best_mean, "wall_s": wall, "workers": args.workers,
                   "sim_time_s": acc.get("sim_time"), "utilization": acc.get("overall_utilization"),
                   "core_seconds_per_sample": args.workers * wall / res.total_samples,
                   "sim_seconds_per_sample": sum(acc.get("sim_time", [0])) / res.total_samples,
                   "machine_load_1min": os.getloadavg()[0]}
            data["runs"].append(rec)
            print(json.dumps(rec), flush=True)
            tmp = args.out + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(data, fh, indent=1)
            os.replace(tmp, args.out)
    ex.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
