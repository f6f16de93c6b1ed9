"""Utilization of the parallel backends on ~1 ms samples whose cost varies 5x across systems.

    mpiexec -n 2 python benchmarks/bench_utilization.py --backend mpi --out studies/parallel/util_mpi2.json
    python benchmarks/bench_utilization.py --backend processes --workers 2 --out studies/parallel/util_proc2.json

System i costs c_i seconds per sample (``--work cpu``: busy CPU work measured in thread CPU
time; ``--work sleep``: the block waits sum(c_i), like an external simulator), c_i evenly spread on
[c_min, 5 c_min] with mean ``--cost`` (1 ms), then returns a normal sample
(MDM means). Utilization = simulation time / (simulating workers x wall).
Workloads: equal allocation (large blocks), KN (one sample per survivor per
stage: small blocks, shared-sampling pattern) and KT with 4 groups
(partitioned pattern, group tasks balanced by LPT on estimated cost).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import rands
from rands.problems.normal import MonotoneDecreasingMeans


class SpinNormal(MonotoneDecreasingMeans):
    """MDM normal samples that cost c_i seconds each (busy work, like a simulation)."""

    name = "spin-mdm"

    def __init__(self, k: int = 40, delta: float = 0.1, cost: float = 1e-3, work: str = "cpu"):
        super().__init__(k=k, delta=delta)
        self.work = work
        lo = 2.0 * cost / 6.0                      # mean of [lo, 5 lo] is 3 lo = cost
        self.costs = np.linspace(lo, 5.0 * lo, k)
        self.cost = cost

    def simulate(self, systems, reps, streams):
        out = super().simulate(systems, reps, streams)
        if self.work == "sleep":       # an external simulation (GPU job, licence server, I/O)
            time.sleep(float(self.costs[np.asarray(systems)].sum()))
            return out
        clock = time.thread_time      # CPU time: the same work however loaded the machine is
        for c in self.costs[np.asarray(systems)]:
            end = clock() + c
            while clock() < end:
                pass
        return out


WORKLOADS = {
    "equal": ("equal", {"budget": 8000}),
    "kn": ("kn", {"alpha": 0.05, "delta": 0.1, "n0": 10}),
    "kt": ("kt", {"alpha": 0.05, "delta": 0.1, "n0": 10, "g": 10, "n_groups": 8}),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="mpi", choices=["processes", "mpi", "serial"])
    ap.add_argument("--workers", type=int)
    ap.add_argument("--k", type=int, default=40)
    ap.add_argument("--cost", type=float, default=1e-3)
    ap.add_argument("--workloads", default="equal,kn,kt")
    ap.add_argument("--work", default="cpu", choices=["cpu", "sleep"],
                    help="cpu: busy CPU work per sample; sleep: the samples wait (external simulator)")
    ap.add_argument("--out")
    args = ap.parse_args()
    from rands.parallel import make_executor

    ex = make_executor(args.backend, args.workers)
    if ex is None:
        return 0
    prob = SpinNormal(k=args.k, cost=args.cost, work=args.work)
    # warm-up: load numba kernels on every worker (not measured)
    rands.select(SpinNormal(k=args.k, cost=1e-6), "equal", seed=0, executor=ex, budget=args.k * 50)
    rows = {}
    for wl in args.workloads.split(","):
        name, params = WORKLOADS[wl]
        if hasattr(ex, "reset_accounting"):
            ex.reset_accounting()
        t0 = time.perf_counter()
        r = rands.select(prob, name, seed=1, executor=ex, **params)
        wall = time.perf_counter() - t0
        acc = r.accounting
        sim = sum(acc.get("sim_time", [0.0]))
        rows[wl] = {"procedure": name, "params": params, "total_samples": r.total_samples,
                    "wall_s": wall, "sim_time_s": acc.get("sim_time"),
                    "utilization_per_worker": acc.get("utilization"),
                    "overall_utilization": acc.get("overall_utilization", sim / wall),
                    "workers": acc.get("workers", 1), "best": r.best}
        print(f"{args.backend} {wl:6s} samples={r.total_samples:7d} wall={wall:6.2f}s "
              f"util={rows[wl]['overall_utilization']:.3f} per-worker={[round(u, 3) for u in acc.get('utilization', [])]}",
              flush=True)
    ex.close()
    out = {"backend": args.backend, "k": args.k, "mean_cost_s": args.cost, "cost_ratio": 5.0,
           "work": args.work, "load_average_1min": __import__("os").getloadavg()[0],
           "command": " ".join(sys.argv), "rows": rows}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
