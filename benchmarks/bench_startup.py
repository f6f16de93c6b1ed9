"""Benchmark: where a fresh process's time goes before its first selection (processes backend).

    python benchmarks/bench_startup.py --out benchmarks/results/startup.json

Each of ``--runs`` fresh interpreters imports rands, starts a 2-worker processes executor (the
forkserver loads the compiled kernels while this process loads its own; the workers are forked
from it) and runs one KT selection (slippage k = 10^4, as in bench_pyprs.py). Recorded per run:
import, executor start-up (with this process's and each worker's kernel warm-up), the first
selection, and the process's wall clock. Measure on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, time
def main():
    t0 = time.perf_counter()
    import rands
    from rands.parallel import make_executor
    t1 = time.perf_counter()
    prob = rands.problems.make("slippage", k=10_000, delta=0.5)
    t2 = time.perf_counter()
    ex = make_executor("processes", 2)
    t3 = time.perf_counter()
    r = rands.select(prob, "kt", seed=(1234, 0), executor=ex, alpha=0.05, delta=0.5, n0=20, g=20, n_groups=2)
    t4 = time.perf_counter()
    ex.close()
    print(json.dumps({"import_s": t1 - t0, "executor_s": t3 - t2, "coordinator_warmup_s": ex.coordinator_warmup_s,
                      "worker_warmup_s": ex.worker_warmup_s, "first_selection_s": t4 - t3, "best": int(r.best)}))
if __name__ == "__main__":
    main()
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/startup.json")
    args = ap.parse_args()
    data = {"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()], "runs": []}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["process_wall_s"] = time.perf_counter() - t0
        data["runs"].append(row)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    data["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
