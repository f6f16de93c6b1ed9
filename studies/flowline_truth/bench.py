"""Speed of the FlowLine and Inventory kernels (one core).

    python studies/flowline_truth/bench.py   # writes studies/flowline_truth/bench.json

ns/event = wall time / (pairs * (warmup + jobs) * 3 stations). "independent":
every pair has its own stream (exponentials generated per pair); "crn": blocks
of all systems x a few replications under CRN, where one set of exponentials
per replication is shared by the whole block (only the recursion is per pair).
Best of 3 repeats of process CPU time (the machine is shared; wall time under
load is larger).
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from rands.problems.flowline import FlowLine
from rands.problems.inventory import Inventory, inventory_exact_means
from rands.streams import Streams


def best_time(fn, repeat=3):
    """Best-of-repeat CPU time of this process (less sensitive to a loaded machine than wall time)."""
    ts = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        ts.append(time.process_time() - t)
    return min(ts)


def main():
    res = {"machine": platform.processor() or platform.machine(), "flowline": [], "inventory": {}}
    for L in (20, 50):
        p = FlowLine(L=L)
        p.simulate(np.array([0]), np.array([0]), Streams(0))
        ev = (p.warmup + p.jobs) * 3
        rng = np.random.default_rng(0)
        n = 5000
        sys = rng.integers(0, p.k, n)
        reps = rng.integers(0, 10**6, n)
        t = best_time(lambda: p.simulate(sys, reps, Streams(1)))
        res["flowline"].append({"L": L, "mode": "independent", "pairs": n, "s": t,
                                "us_per_replication": t / n * 1e6, "ns_per_event": t / (n * ev) * 1e9})
        m = 4 if L == 20 else 1
        sys = np.repeat(np.arange(p.k), m)
        reps = np.tile(np.arange(m), p.k)
        t = best_time(lambda: p.simulate(sys, reps, Streams(1, crn=True)))
        res["flowline"].append({"L": L, "mode": "crn", "pairs": int(sys.size), "s": t,
                                "us_per_replication": t / sys.size * 1e6,
                                "ns_per_event": t / (sys.size * ev) * 1e9})
    p = Inventory()
    p.simulate(np.array([0]), np.array([0]), Streams(0))
    n = 200000
    sys = np.arange(n) % p.k
    reps = np.arange(n) // p.k
    t = best_time(lambda: p.simulate(sys, reps, Streams(1)))
    res["inventory"] = {"pairs": n, "s": t, "us_per_replication": t / n * 1e6,
                        "ns_per_period": t / (n * 30) * 1e9}
    t = best_time(inventory_exact_means, repeat=1)
    res["inventory"]["exact_means_s"] = t
    out = Path(__file__).resolve().parent / "bench.json"
    out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
