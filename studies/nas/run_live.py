"""Wall clock of the live NAS problem: serial against ``mpiexec -n 2``.

    nice -n 10 python studies/nas/run_live.py --out studies/nas/results/live_wallclock.json

Runs ``rands run live_serial.toml`` and ``mpiexec -n 2 rands run live_mpi.toml``
(6 architectures x 4 replications, equal allocation, CRN; every sample trains a
network on digits) in alternation ``--repeats`` times, and records each wall clock
(outside, process start included; and the selection's own wall_time), the load
average before and after, and whether both backends return the same means (they must:
sample (i, r) depends only on (seed, r) under CRN).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def run_once(cmd: list[str], result_path: Path) -> dict:
    if result_path.exists():
        result_path.unlink()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    res = json.loads(result_path.read_text())
    return {"command": " ".join(cmd), "wall_s": wall, "selection_wall_s": res["wall_time"],
            "loadavg_before": list(load0), "loadavg_after": list(os.getloadavg()),
            "best": res["best"], "best_label": res.get("best_label"), "means": res["means"],
            "total_samples": res["total_samples"], "accounting": res.get("accounting", {})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results" / "live_wallclock.json"))
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    runs = []
    for rep in range(args.repeats):
        for backend, cmd, res in (
                ("serial", ["rands", "run", "studies/nas/live_serial.toml"], "live_serial_run.json"),
                ("mpi-2", ["mpiexec", "-n", "2", "rands", "run", "studies/nas/live_mpi.toml"],
                 "live_mpi_run.json")):
            r = run_once(cmd, HERE / "results" / res)
            r.update({"backend": backend, "repeat": rep, "utc": time.strftime("%H:%M:%S", time.gmtime())})
            runs.append(r)
            print(f"{backend:6s} repeat {rep}: {r['wall_s']:.1f} s (selection {r['selection_wall_s']:.1f} s) "
                  f"load {r['loadavg_before'][0]:.1f}", flush=True)
    ser = [r for r in runs if r["backend"] == "serial"]
    mpi = [r for r in runs if r["backend"] == "mpi-2"]
    same = all(np.allclose(np.asarray(a["means"], float), np.asarray(ser[0]["means"], float),
                           equal_nan=True) and a["best"] == ser[0]["best"] for a in runs)
    out = {"runs": runs, "same_result_all_backends": bool(same), "nproc": os.cpu_count(),
           "serial_wall_median_s": float(np.median([r["wall_s"] for r in ser])),
           "mpi2_wall_median_s": float(np.median([r["wall_s"] for r in mpi])),
           "command": "python studies/nas/run_live.py --repeats %d" % args.repeats}
    out["speedup"] = out["serial_wall_median_s"] / out["mpi2_wall_median_s"]
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
