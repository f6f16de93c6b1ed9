"""Issue 16 study: DC / P3C regime map with the sample breakdown, and PCS validation.

Resumable: every macroreplication appends one JSON line to results/<out>.jsonl and
is skipped when rerun. Defaults of P3C as shipped (adaptive pilot, alpha_split="auto",
n0_auto; refinement off); DC at its defaults (alpha_split = 0.5, random partition). Both
n0 = 10 (P3C's n0_auto may raise its first stages from the pilot), KN. The runs recorded
for the review of issue 16 are the chain studies/p3c/run_chain_g.sh (regime_k*.jsonl hold
the DC rows and the P3C of commit ac0922e, before n0_auto); with the head start (the current
default; regime3_* = head_start=False) the chains run_chain_i.sh and run_chain_j.sh
(regime4_*, pcs4_*, rho0c_k1024); with KN's boundary parameter kn_c="auto" (the current default;
regime4_* = kn_c=1) the chain run_chain_k.sh (regime5_*, regime5c2_* with c = 2 forced, pcs5_*,
rho0d, dcc2_goal).

    nice -n 19 python studies/p3c/regime.py map --ks 1024 --reps 20 --out regime_k1024
    nice -n 19 python studies/p3c/regime.py map --ks 4096 --reps 20 --out regime_k4096
    nice -n 19 python studies/p3c/regime.py pcs --k 256 --p 16 --rho 0.5 --reps 1000 --out pcs_rho05
    nice -n 19 python studies/p3c/regime.py pcs --k 256 --p 16 --rho 0.3 --reps 1000 --out pcs_rho03
    nice -n 19 python studies/p3c/regime.py budget --reps 50 --out budget_ocba
then ``python studies/p3c/regime_report.py``.

Breakdown (P3C): pilot, first stage (n0 per system of a group of >= 2), within-cluster
sequential samples split into systems of their group's majority true cluster ("same":
screened mostly through same-cluster pairs) and strays ("cross": every pair against
the group's majority is an across-cluster pair), final stage.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

import numpy as np

import rands
from rands.clustering import adjusted_rand_index

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results")
ALPHA, N0 = 0.05, 10


def read_rows(path: str):
    """The complete JSON rows of a results file (a line cut by an interrupted run is skipped)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _done(path: str) -> set:
    return {tuple(r["key"]) for r in read_rows(path)}


def _breakdown(prob, r) -> dict:
    ex = r.extras
    lab = np.asarray(ex["labels"])
    wn = np.asarray(ex["within_n"], dtype=np.int64)
    truth = np.asarray(prob.clusters)
    sizes = np.bincount(lab)
    in_group = sizes[lab] > 1
    n0w = int(ex.get("n0_within", N0))            # the within base's first stage (n0_auto)
    first = int(np.sum(np.minimum(wn, n0w)[in_group]))
    seq = np.maximum(wn - n0w, 0) * in_group
    stray = np.zeros(lab.size, dtype=bool)
    for g in np.unique(lab):
        idx = np.flatnonzero(lab == g)
        maj = np.bincount(truth[idx]).argmax()
        stray[idx] = truth[idx] != maj
    return {"pilot": int(ex["pilot_samples"]), "first": first, "seq_same": int(seq[~stray].sum()),
            "seq_cross": int(seq[stray].sum()), "n_stray": int(stray.sum()),
            "final": int(ex["final_samples"]), "within": int(ex["within_samples"]),
            "n0_within": n0w, "n0_final": int(ex.get("n0_final", N0))}


def _run(prob, proc: str, params: dict, seed) -> dict:
    t = time.time()
    r = rands.select(prob, proc, seed=seed, **params)
    ex = r.extras
    row = {"total": int(r.total_samples), "correct": bool(r.best == 0), "wall": round(time.time() - t, 3),
           "alpha_w": ex.get("alpha_w"), "pilot_n": int(ex["pilot_samples"]) // prob.k,
           "refined": int(ex.get("refined", 0) or 0), "pilot_history": ex.get("pilot_history"),
           "c_within": ex.get("c_within"), "c_final": ex.get("c_final")}
    row.update(_breakdown(prob, r))
    if proc == "p3c":
        row["ari"] = round(float(adjusted_rand_index(prob.clusters, ex["labels"])), 4)
    return row


def _method(meth: str, p: int, d: float) -> tuple[str, dict]:
    """"dc", "p3c" (as shipped), "dcN" (DC with first stage N), "dc-c2" (DC with KN's c = 2),
    "p3c-fixed-n0" (n0_auto off),
    "p3c-cN" (KN's boundary parameter fixed at N; the default kn_c="auto" chooses 1 or 2),
    "p3c-pilotN" (a fixed pilot of N instead of the adaptive one)."""
    params = dict(alpha=ALPHA, delta=d, n0=N0, base="kn")
    if meth == "dc-c2":                   # DC with KN's boundary parameter c = 2
        return "dc", {**params, "n_groups": p, "base_params": {"c": 2}}
    if meth.startswith("dc"):
        if meth != "dc":
            params["n0"] = int(meth[2:])
        return "dc", {**params, "n_groups": p}
    if meth == "p3c-fixed-n0":
        params["n0_auto"] = False
    if meth.startswith("p3c-c"):
        params["kn_c"] = int(meth[5:])
    if meth.startswith("p3c-pilot"):                # a fixed pilot instead of the adaptive one
        params["pilot"] = int(meth[9:])
    return "p3c", {**params, "n_clusters": p}


def part_map(a) -> None:
    path = os.path.join(OUT, a.out + ".jsonl")
    done = _done(path)
    cells = [(d, k, p, rho) for d in a.deltas for k in a.ks for p in a.ps for rho in a.rhos]
    with open(path, "a") as f:
        for rep_block in range(0, a.reps, a.block):
            for d, k, p, rho in cells:        # cheap cells (large delta) first, reps in blocks
                prob = rands.problems.make("clustered", k=k, p=p, rho=rho, delta=d)
                for rep in range(rep_block, min(rep_block + a.block, a.reps)):
                    for meth in a.methods:
                        key = [meth, k, p, rho, d, rep]
                        if tuple(key) in done:
                            continue
                        proc, params = _method(meth, p, d)
                        row = _run(prob, proc, params, (16, k, p, int(rho * 100), int(d * 10), rep))
                        f.write(json.dumps({"key": key, **row}) + "\n")
                        f.flush()
                if time.time() > a.stop_at:
                    print("stopping at the deadline", flush=True)
                    return


def part_pcs(a) -> None:
    path = os.path.join(OUT, a.out + ".jsonl")
    done = _done(path)
    prob = rands.problems.make("clustered", k=a.k, p=a.p, rho=a.rho, delta=a.delta)
    params = dict(alpha=ALPHA, delta=a.delta, n0=N0, base="kn", n_clusters=a.p)
    if a.pilot:
        params["pilot"] = a.pilot
    if a.kn_c:
        params["kn_c"] = a.kn_c
    with open(path, "a") as f:
        for rep in range(a.reps):
            key = ["p3c", a.k, a.p, a.rho, a.delta, rep]
            if tuple(key) in done:
                continue
            row = _run(prob, "p3c", params, (1616, a.k, a.p, int(a.rho * 100), rep))
            f.write(json.dumps({"key": key, **row}) + "\n")
            f.flush()
            if time.time() > a.stop_at:
                print("stopping at the deadline", flush=True)
                return


def part_budget(a) -> None:
    """Fixed budget N = c k, screening-free P3C vs DC vs EFG+ and OCBA over all systems (matched N)."""
    path = os.path.join(OUT, a.out + ".jsonl")
    done = _done(path)
    meths = {"p3c": {"n_clusters": a.p, "n0": N0}, "dc": {"n_groups": a.p, "n0": N0},
             "efg+": {"n0": N0, "batch": 8, "crn": False}, "ocba": {"n0": N0, "crn": False}}
    with open(path, "a") as f:
        for rep_block in range(0, a.reps, a.block):
            for rho in a.rhos:
                prob = rands.problems.make("clustered", k=a.k, p=a.p, rho=rho, delta=a.delta)
                for c in a.cs:
                    N = int(c * a.k)
                    for rep in range(rep_block, min(rep_block + a.block, a.reps)):
                        for meth in a.methods:
                            key = [meth, a.k, a.p, rho, a.delta, c, rep]
                            if tuple(key) in done:
                                continue
                            t = time.time()
                            r = rands.select(prob, meth, seed=(1717, a.k, int(rho * 100), int(c), rep),
                                             budget=N, **meths[meth])
                            row = {"key": key, "total": int(r.total_samples), "correct": bool(r.best == 0),
                                   "wall": round(time.time() - t, 3)}
                            f.write(json.dumps(row) + "\n")
                            f.flush()
                if time.time() > a.stop_at:
                    print("stopping at the deadline", flush=True)
                    return


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="part", required=True)
    m = sub.add_parser("map")
    m.add_argument("--ks", type=int, nargs="+", default=[1024, 4096])
    m.add_argument("--ps", type=int, nargs="+", default=[4, 8, 16, 32])
    m.add_argument("--rhos", type=float, nargs="+", default=[0.5, 0.9, 0.95, 0.99])
    m.add_argument("--deltas", type=float, nargs="+", default=[0.5, 0.2, 0.1])
    m.add_argument("--reps", type=int, default=20)
    m.add_argument("--methods", nargs="+", default=["dc", "p3c"])
    m.add_argument("--block", type=int, default=5)
    m.add_argument("--out", default="regime")
    c = sub.add_parser("pcs")
    c.add_argument("--k", type=int, default=256)
    c.add_argument("--p", type=int, default=16)
    c.add_argument("--rho", type=float, default=0.5)
    c.add_argument("--delta", type=float, default=0.5)
    c.add_argument("--reps", type=int, default=1000)
    c.add_argument("--pilot", type=int, default=None, help="fixed pilot size (default: adaptive)")
    c.add_argument("--kn-c", type=int, default=None, help="KN's boundary parameter (default: auto)")
    c.add_argument("--out", default="pcs")
    b = sub.add_parser("budget")
    b.add_argument("--k", type=int, default=1024)
    b.add_argument("--p", type=int, default=16)
    b.add_argument("--rhos", type=float, nargs="+", default=[0.5, 0.9, 0.99])
    b.add_argument("--cs", type=float, nargs="+", default=[15, 20, 50])
    b.add_argument("--delta", type=float, default=0.5)
    b.add_argument("--methods", nargs="+", default=["p3c", "dc", "efg+", "ocba"])
    b.add_argument("--reps", type=int, default=50)
    b.add_argument("--block", type=int, default=10)
    b.add_argument("--out", default="budget_ocba")
    for s in (m, c, b):
        s.add_argument("--stop-at", type=float, default=float("inf"), help="unix time to stop at")
    a = ap.parse_args(argv)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, a.out + ".cmd"), "w") as f:
        f.write(" ".join(["python"] + sys.argv) + "\n")
    {"map": part_map, "pcs": part_pcs, "budget": part_budget}[a.part](a)


if __name__ == "__main__":
    main()
