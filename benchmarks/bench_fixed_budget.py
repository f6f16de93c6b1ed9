"""Benchmark: FBKT and EFG on a normal problem with k systems and budget N = c*k, one core.

Times are reported as ratios to the time numpy takes to draw the same N normals
(``np.random.default_rng(0).standard_normal(N)``), measured in the same script, and split
into: the raw simulation kernel (``problem.simulate`` on all N pairs, chunked), the
context's ``ctx.draw`` path (same N samples through the sampling context, chunked), and the
full procedures. Usage::

    python benchmarks/bench_fixed_budget.py [--k 1000000] [--c 20] [--seed 0] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import rands  # noqa: E402
from rands.sampling import SamplingContext  # noqa: E402
from rands.streams import Streams  # noqa: E402


def _best_of(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=1_000_000)
    ap.add_argument("--c", type=int, default=20, help="budget per system (N = c*k)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--problem", default="slippage")
    ap.add_argument("--procs", default="fbkt,efg,efg:batch=4",
                    help="comma-separated procedures, options as name:key=val;key=val")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    k, N = args.k, args.c * args.k
    prob = rands.problems.make(args.problem, k=k)
    streams = Streams(args.seed)

    # warm up numba kernels (cached) on a small problem
    small = rands.problems.make(args.problem, k=1000)
    for spec in args.procs.split(","):
        rands.select(small, spec.partition(":")[0], seed=0, budget=20_000)

    t_numpy = _best_of(lambda: np.random.default_rng(0).standard_normal(N), args.repeat)

    step = (1 << 18) // args.c

    def kernel():
        for a in range(0, k, step):
            b = min(k, a + step)
            prob.simulate(np.repeat(np.arange(a, b), args.c), np.tile(np.arange(args.c), b - a), streams)

    t_kernel = _best_of(kernel, args.repeat)

    def via_ctx():
        ctx = SamplingContext(prob, streams, budget=N)
        for a in range(0, k, step):
            ctx.draw(np.arange(a, min(k, a + step)), args.c)

    t_ctx = _best_of(via_ctx, args.repeat)
    out = {"k": k, "N": N, "problem": args.problem, "seed": args.seed,
           "numpy_s": t_numpy, "kernel_s": t_kernel, "ctx_draw_s": t_ctx,
           "kernel_ratio": t_kernel / t_numpy, "ctx_draw_ratio": t_ctx / t_numpy, "procedures": {}}
    print(f"k={k} N={N}: numpy {t_numpy:.3f} s | simulate kernel {t_kernel:.3f} s "
          f"({t_kernel / t_numpy:.2f}x) | ctx.draw {t_ctx:.3f} s ({t_ctx / t_numpy:.2f}x)", flush=True)
    params = {"fbkt": {"n0": 8, "phi": 3}, "efg": {"n0": 10}, "efg+": {"n0": 10},
              "equal": {}, "ocba": {"n0": 10}}
    for spec in args.procs.split(","):
        name, _, extra = spec.partition(":")
        kw = dict(params.get(name, {}))
        for item in filter(None, extra.split(";")):
            key, val = item.split("=")
            kw[key] = int(val)
        holder = {}

        def run():
            holder["r"] = rands.select(prob, name, seed=args.seed, budget=N, **kw)

        t = _best_of(run, args.repeat)
        r = holder["r"]
        name = spec
        out["procedures"][name] = {"seconds": t, "ratio": t / t_numpy, "total_samples": r.total_samples,
                                   "best": r.best, "sim_time": r.accounting.get("sim_time"),
                                   "extras": {a: b for a, b in r.extras.items() if not isinstance(b, list)}}
        print(f"{name:12s} {t:.3f} s = {t / t_numpy:.2f}x numpy; samples {r.total_samples}; "
              f"best {r.best}; extras {out['procedures'][name]['extras']}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
