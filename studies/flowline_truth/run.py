"""Monte Carlo truth table for FlowLine(L=20) (PyPRS buffer convention, warmup 2000, 50 jobs).

Every alternative gets the same R replications under common random numbers
(each mean is unbiased with standard error sd/sqrt(R); CRN makes differences
between alternatives far more precise than the individual means). A pilot with
a different seed picks the C leading candidates; the main run also records their
paired cross-products so the README can state the gap between the best and the
runner-up with a paired standard error.

    nice -n 10 python studies/flowline_truth/run.py --reps 40000 > studies/flowline_truth/run.log 2>&1

Writes rands/data/flowline_L20.npz (means, se, n, and the settings) and
studies/flowline_truth/results.json; a partial state is saved after every chunk
(studies/flowline_truth/partial.npz) and ``--resume`` continues from it.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rands.problems.flowline import FlowLine
from rands.streams import Streams

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "rands" / "data" / "flowline_L20.npz"
SEED = 20261126          # main run; never used by tests or studies of procedures
PILOT_SEED = 20261127


def block(prob: FlowLine, streams: Streams, r0: int, n: int) -> np.ndarray:
    sys = np.repeat(np.arange(prob.k), n)
    reps = np.tile(np.arange(r0, r0 + n), prob.k)
    return prob.simulate(sys, reps, streams).reshape(prob.k, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40000)
    ap.add_argument("--chunk", type=int, default=200)
    ap.add_argument("--pilot", type=int, default=1000)
    ap.add_argument("--candidates", type=int, default=30)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--finalize", action="store_true", help="write outputs from partial.npz now")
    a = ap.parse_args()
    prob = FlowLine(L=20)
    k = prob.k
    partial = HERE / "partial.npz"
    t_start = time.time()
    if (a.resume or a.finalize) and partial.exists():
        z = np.load(partial)
        cand, s1, s2, cross, done, elapsed0 = (z["cand"], z["s1"], z["s2"], z["cross"], int(z["done"]),
                                                 float(z["elapsed"]))
    else:
        t0 = time.perf_counter()
        xp = block(prob, Streams(PILOT_SEED, crn=True), 0, a.pilot)
        cand = np.argsort(-xp.mean(1))[: a.candidates]
        print(f"pilot {a.pilot} reps in {time.perf_counter() - t0:.1f}s; candidates {cand[:5]}", flush=True)
        s1 = np.zeros(k)
        s2 = np.zeros(k)
        cross = np.zeros((len(cand), len(cand)))
        done, elapsed0 = 0, time.perf_counter() - t0
    shift = 5.0   # sums of (x - shift) keep the variance computation well conditioned
    streams = Streams(SEED, crn=True)
    t0 = time.perf_counter()
    while done < a.reps and not a.finalize:
        n = min(a.chunk, a.reps - done)
        x = block(prob, streams, done, n) - shift
        s1 += x.sum(1)
        s2 += (x * x).sum(1)
        xc = x[cand]
        cross += xc @ xc.T
        done += n
        el = elapsed0 + time.perf_counter() - t0
        np.savez(partial, cand=cand, s1=s1, s2=s2, cross=cross, done=done, elapsed=el)
        print(f"{done}/{a.reps} reps, {el:.0f}s", flush=True)
    elapsed = elapsed0 + time.perf_counter() - t0
    R = done
    mean_c = s1 / R
    var = (s2 - R * mean_c**2) / (R - 1)
    means = mean_c + shift
    se = np.sqrt(var / R)
    np.savez_compressed(DATA, means=means, se=se, n=np.int64(R), seed=np.int64(SEED), crn=True,
                        L=20, warmup=2000, jobs=50, buffer_convention="capacity")
    # paired statistics among the candidates
    cm = mean_c[cand]
    cov = (cross - R * np.outer(cm, cm)) / (R - 1)
    order = np.argsort(-means)
    top = [{"rank": r + 1, "system": int(i), "label": prob.label(i), "mean": float(means[i]),
            "se": float(se[i]), "sd": float(np.sqrt(var[i]))} for r, i in enumerate(order[:20])]
    best, second = order[0], order[1]
    res = {"reps": R, "seed": SEED, "crn": True, "k": k, "wall_s": elapsed,
           "us_per_replication": elapsed / (R * k) * 1e6, "top20": top,
           "se_range": [float(se.min()), float(se.max())]}
    pos = {int(c): j for j, c in enumerate(cand)}
    if int(best) in pos and int(second) in pos:
        b, s = pos[int(best)], pos[int(second)]
        vd = cov[b, b] + cov[s, s] - 2 * cov[b, s]
        res["gap_best_runner_up"] = float(means[best] - means[second])
        res["gap_paired_se"] = float(np.sqrt(vd / R))
        res["corr_best_runner_up"] = float(cov[b, s] / np.sqrt(cov[b, b] * cov[s, s]))
        gaps = []
        for r, i in enumerate(order[1:10]):
            if int(i) in pos:
                j = pos[int(i)]
                v = cov[b, b] + cov[j, j] - 2 * cov[b, j]
                gaps.append({"label": prob.label(i), "gap": float(means[best] - means[i]),
                             "paired_se": float(np.sqrt(v / R))})
        res["gaps_to_best"] = gaps
    (HERE / "results.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
