"""Benchmark: cost of one sample of a SimOpt model through rands.problems.from_simopt versus
one replication through SimOpt's own ``Problem.simulate`` (same model factors, one core).

The difference is what rands adds per sample: positioning the model's MRG32k3a generators at
(stream, substream r, subsubstream j) and building them. Best of ``--repeat`` timings.
Usage::

    python benchmarks/bench_simopt.py [--n 2000] [--repeat 3] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def sscont_cost(r):
    return r["avg_backorder_costs"] + r["avg_order_costs"] + r["avg_holding_costs"]


CASES = [  # model, SimOpt problem, rands grid, the problem's decision vector, response, model factors
    ("CNTNEWS", "CNTNEWS-1", {"order_quantity": [0.19, 0.3]}, [0.19], "profit", {}),
    ("SSCONT", "SSCONT-1", {"s": [600, 700], "S": [1500]}, [600, 900], sscont_cost, {}),
    ("MM1", "MM1-1", {"mu": [3.0, 4.0]}, [3.0], "avg_sojourn_time", {"warmup": 50, "people": 200}),
]


def main(argv=None) -> dict:
    from mrg32k3a.mrg32k3a import MRG32k3a
    from simopt import directory
    from simopt.problem import Solution

    from rands.problems.simopt import from_simopt
    from rands.streams import Streams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="samples per timing (SSCONT, MM1: n / 10)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    rows = []
    for model, pname, grid, x, response, fixed in CASES:
        n = a.n if model == "CNTNEWS" else max(a.n // 10, 10)
        prob = from_simopt(model, grid=grid, factors=fixed, response=response)
        streams = Streams(1)
        prob.simulate(np.zeros(5, dtype=np.int64), np.arange(5), streams)   # warm-up
        ours = theirs = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            prob.simulate(np.zeros(n, dtype=np.int64), np.arange(n), streams)
            ours = min(ours, (time.perf_counter() - t) / n)
            problem = directory.problem_directory[pname](model_fixed_factors=fixed)
            sol = Solution(tuple(x), problem)
            sol.attach_rngs([MRG32k3a(s_ss_sss_index=[0, j, 0]) for j in range(problem.model.n_rngs)])
            t = time.perf_counter()
            problem.simulate(sol, n)
            theirs = min(theirs, (time.perf_counter() - t) / n)
        rows.append({"model": model, "n": n, "rands_us_per_sample": round(ours * 1e6, 1),
                     "simopt_us_per_replication": round(theirs * 1e6, 1),
                     "ratio": round(ours / theirs, 3)})
        print(f"{model:8s} rands {ours * 1e6:8.1f} us/sample   SimOpt {theirs * 1e6:8.1f} us/rep   "
              f"ratio {ours / theirs:.2f}")
    args = sys.argv[1:] if argv is None else list(argv)
    out = {"command": " ".join(["python benchmarks/bench_simopt.py", *args]), "rows": rows}
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
