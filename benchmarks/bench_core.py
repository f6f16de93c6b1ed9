"""Benchmark: the sequential core and the fixed-budget procedures against the sampling floor.

    python benchmarks/bench_core.py --out benchmarks/results/core.json

Every case is run ``--reps`` times; each run is followed at once by numpy drawing the same
number of normals (``np.random.default_rng(r).standard_normal(n)``, n = the samples the run
used), so rands and its floor are measured interleaved under the same load. The ratio of a
repetition is rands' wall clock over numpy's; the table gives the median and the range.
"Processes vs serial" interleaves a serial run and a run on 2 worker processes, in
alternating order, ``--parallel-reps`` pairs (executor started once, outside the timing,
its start-up reported). Numba kernels are compiled and
loaded by a warm-up selection on a small problem first (not timed). The load average
before and after is recorded: measure on a quiet machine.

Targets (issue 11): KT k = 10^4 <= 30x numpy; KN k = 10^4 <= 20x; KT k = 10^6 under 60 s;
OCBA k = 10^5, N = 2*10^6 <= 10x; processes at most 10% slower than serial.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import rands  # noqa: E402

SLIPPAGE = {"delta": 0.5}
FP = {"alpha": 0.05, "delta": 0.5, "n0": 10}

#: name -> (k, procedure, params, target ratio to numpy or None)
SERIAL_CASES: dict[str, tuple[int, str, dict, float | None]] = {
    "KT k=10^4": (10_000, "kt", {**FP, "g": 10}, 30.0),
    "KN k=10^4": (10_000, "kn", FP, 20.0),
    "OCBA k=10^5 N=2e6": (100_000, "ocba", {"budget": 2_000_000}, 10.0),
    "FBKT k=10^6 N=2e7": (1_000_000, "fbkt", {"budget": 20_000_000}, None),
    "EFG k=10^6 N=2e7": (1_000_000, "efg", {"budget": 20_000_000}, None),
    "KT k=10^6": (1_000_000, "kt", {**FP, "g": 10}, None),
}
#: cases run on serial and on 2 processes
PARALLEL_CASES = ("KT k=10^4", "KN k=10^4", "FBKT k=10^6 N=2e7")


def _timed_select(k: int, name: str, params: dict, seed, executor=None):
    prob = rands.problems.make("slippage", k=k, **SLIPPAGE)
    t0 = time.perf_counter()
    res = rands.select(prob, name, seed=seed, executor=executor, **params)
    return time.perf_counter() - t0, res


def _numpy_time(n: int, seed: int) -> float:
    t0 = time.perf_counter()
    np.random.default_rng(seed).standard_normal(n)
    return time.perf_counter() - t0


def warm_up(executor=None) -> None:
    for k, name, params, _ in SERIAL_CASES.values():
        small = dict(params)
        if "budget" in small:
            small["budget"] = 20 * 200
        _timed_select(200, name, small, seed=0, executor=executor)
    np.random.default_rng(0).standard_normal(10 ** 6)


def serial_rows(cases: list[str], reps: int) -> list[dict]:
    rows = []
    for case in cases:
        k, name, params, target = SERIAL_CASES[case]
        runs = []
        for r in range(reps):
            wall, res = _timed_select(k, name, params, seed=(2026, r))
            t_np = _numpy_time(res.total_samples, r)
            runs.append({"wall_s": wall, "numpy_s": t_np, "ratio": wall / t_np,
                         "samples_used": int(res.total_samples),
                         "samples_simulated": int(res.samples_simulated), "best": int(res.best)})
        ratios = [x["ratio"] for x in runs]
        row = {"case": case, "procedure": name, "k": k, "params": params, "runs": runs,
               "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
               "ratio_max": max(ratios), "wall_median_s": statistics.median(x["wall_s"] for x in runs),
               "correct": sum(x["best"] == 0 for x in runs), "target_ratio": target}
        if target is not None:
            row["meets_target"] = row["ratio_median"] <= target
        if case == "KT k=10^6":
            row["target_wall_s"] = 60.0
            row["meets_target"] = max(x["wall_s"] for x in runs) < 60.0
        rows.append(row)
        print(f"{case:22s} wall {row['wall_median_s']:8.3f} s  x numpy {row['ratio_median']:7.1f} "
              f"[{row['ratio_min']:.1f}, {row['ratio_max']:.1f}]  used {runs[0]['samples_used']:,} "
              f"simulated {runs[0]['samples_simulated']:,}  correct {row['correct']}/{reps}", flush=True)
    return rows


def parallel_rows(cases: list[str], reps: int, workers: int) -> tuple[list[dict], float]:
    from rands.parallel import make_executor
    t0 = time.perf_counter()
    ex = make_executor("processes", workers)
    startup = time.perf_counter() - t0
    warm_up(ex)
    rows = []
    try:
        for case in cases:
            k, name, params, _ = SERIAL_CASES[case]
            runs = []
            for r in range(reps):
                # the order alternates, so a first-run advantage (caches, memory the
                # allocator has just returned) does not always go to the same side
                serial = lambda: _timed_select(k, name, params, seed=(2026, r))  # noqa: E731
                pool = lambda: _timed_select(k, name, params, seed=(2026, r), executor=ex)  # noqa: E731
                if r % 2 == 0:
                    ws, rs = serial()
                    wp, rp = pool()
                else:
                    wp, rp = pool()
                    ws, rs = serial()
                runs.append({"serial_s": ws, "processes_s": wp, "ratio": wp / ws,
                             "same_best_and_samples": bool(rs.best == rp.best and np.array_equal(
                                 rs.sample_sizes, rp.sample_sizes)),
                             "utilization": rp.accounting.get("utilization")})
            ratios = [x["ratio"] for x in runs]
            row = {"case": case, "workers": workers, "runs": runs,
                   "ratio_median": statistics.median(ratios), "ratio_max": max(ratios),
                   "meets_target": statistics.median(ratios) <= 1.10}
            rows.append(row)
            print(f"{case:22s} processes/serial {row['ratio_median']:.2f} (max {row['ratio_max']:.2f})  "
                  f"identical {all(x['same_best_and_samples'] for x in runs)}", flush=True)
    finally:
        ex.close()
    return rows, startup


def to_markdown(data: dict) -> str:
    lines = [f"# Sampling-core benchmark ({data['date']})", "",
             f"Command: `{data['command']}`  ", f"Machine: {data['machine']}, {data['cpus']} CPUs; "
             f"load average before {data['loadavg_before']}, after {data['loadavg_after']}", "",
             "| case | wall (median) | x numpy (median [min, max]) | used | simulated | target | met |",
             "|---|---|---|---|---|---|---|"]
    for r in data["serial"]:
        tgt = (f"<= {r['target_ratio']:g}x" if r.get("target_ratio") else
               (f"< {r['target_wall_s']:g} s" if "target_wall_s" in r else "-"))
        lines.append(f"| {r['case']} | {r['wall_median_s']:.3f} s | {r['ratio_median']:.1f} "
                     f"[{r['ratio_min']:.1f}, {r['ratio_max']:.1f}] | {r['runs'][0]['samples_used']:,} | "
                     f"{r['runs'][0]['samples_simulated']:,} | {tgt} | {r.get('meets_target', '-')} |")
    if data.get("parallel"):
        lines += ["", f"Processes ({data['parallel'][0]['workers']} workers, start-up "
                  f"{data['processes_startup_s']:.2f} s, not timed) against serial:", "",
                  "| case | processes / serial (median, max) | identical results | met (<= 1.10) |",
                  "|---|---|---|---|"]
        for r in data["parallel"]:
            same = all(x["same_best_and_samples"] for x in r["runs"])
            lines.append(f"| {r['case']} | {r['ratio_median']:.2f}, {r['ratio_max']:.2f} | {same} | "
                         f"{r['meets_target']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(SERIAL_CASES))
    ap.add_argument("--parallel-cases", default=",".join(PARALLEL_CASES))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--parallel-reps", type=int, default=5,
                    help="serial/processes pairs per case (odd: the median is one pair)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/core.json")
    args = ap.parse_args()
    data = {"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    warm_up()
    data["serial"] = serial_rows([c for c in args.cases.split(",") if c], args.reps)
    pcases = [c for c in args.parallel_cases.split(",") if c]
    if pcases:
        data["parallel"], data["processes_startup_s"] = parallel_rows(pcases, args.parallel_reps, args.workers)
    data["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    out.with_suffix(".md").write_text(to_markdown(data))
    print(to_markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
