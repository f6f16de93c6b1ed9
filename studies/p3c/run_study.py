"""P3C study: clustered benchmark, PCS validation, fixed budget, clustering quality and cost.

Usage (each part writes studies/p3c/results/<part>.json, appending cell by cell):
    nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 40
    nice -n 10 python studies/p3c/run_study.py grid --k 16384 --reps 8 --ps 2 8 32 --rhos 0.9 --bases kn
    nice -n 10 python studies/p3c/run_study.py pcs --reps 1000
    nice -n 10 python studies/p3c/run_study.py budget --reps 100
    nice -n 10 python studies/p3c/run_study.py ari --reps 20
    nice -n 10 python studies/p3c/run_study.py rho0 --reps 40
    nice -n 10 python studies/p3c/run_study.py cost
    nice -n 10 python studies/p3c/run_study.py big
then ``python studies/p3c/report.py`` for the tables (README) and plots.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc

import numpy as np

import rands
from rands.clustering import adjusted_rand_index, spherical_kmeans
from rands.streams import Streams
from rands.validation import wilson_interval

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results")
ALPHA, DELTA, N0 = 0.05, 0.5, 10


def _save(part: str, rows: list, meta: dict) -> None:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{part}.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    os.replace(path + ".tmp", path)


def _meta(args) -> dict:
    return {"command": " ".join(["python"] + sys.argv), "args": vars(args), "python": platform.python_version(),
            "machine": platform.machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def _method(name: str, prob, p: int, base: str, n0: int = N0, pilot: int | None = None, **extra):
    """(procedure name, params) of one compared method."""
    common = dict(alpha=ALPHA, delta=DELTA, n0=n0, base=base, **extra)
    if name == "dc":
        return "dc", dict(common, n_groups=p)
    if name == "oracle":
        return "p3c", dict(common, n_clusters=p, partition=prob.clusters.tolist())
    if name == "reuse":
        return "p3c", dict(common, n_clusters=p, pilot_mode="reuse")
    if name == "split":
        return "p3c", dict(common, n_clusters=p, pilot=pilot)
    raise ValueError(name)


def _cell(prob, proc: str, params: dict, reps: int, seed: int, truth=None, partial=None) -> dict:
    mu = prob.true_means
    best_true = int(np.argmax(mu))
    samples, correct, pilot, within, final, ari, wall = [], 0, [], [], [], [], 0.0
    for m in range(reps):
        r = rands.select(prob, proc, seed=(seed, m), **params)
        samples.append(r.total_samples)
        correct += int(r.best == best_true)
        pilot.append(r.extras.get("pilot_samples", 0))
        within.append(r.extras.get("within_samples", 0))
        final.append(r.extras.get("final_samples", 0))
        wall += r.wall_time
        if truth is not None and "labels" in r.extras:
            ari.append(adjusted_rand_index(truth, np.asarray(r.extras["labels"])))
        if partial is not None and (m + 1) % 50 == 0 and m + 1 < reps:
            lo, hi = wilson_interval(correct, m + 1)
            partial({"reps": m + 1, "pcs": correct / (m + 1), "pcs_ci": [float(lo), float(hi)],
                     "mean_samples": float(np.mean(samples)), "mean_pilot": float(np.mean(pilot)),
                     "partial": True})
    lo, hi = wilson_interval(correct, reps)
    s = np.asarray(samples, dtype=float)
    return {"reps": reps, "pcs": correct / reps, "pcs_ci": [float(lo), float(hi)], "mean_samples": float(s.mean()),
            "se_samples": float(s.std(ddof=1) / np.sqrt(reps)) if reps > 1 else 0.0,
            "mean_pilot": float(np.mean(pilot)), "mean_within": float(np.mean(within)),
            "mean_final": float(np.mean(final)), "mean_ari": float(np.mean(ari)) if ari else None,
            "wall_per_run": wall / reps}


def part_grid(a) -> None:
    part = f"grid_k{a.k}" + (f"_{a.tag}" if a.tag else "")
    rows, meta = [], _meta(a)
    for rho in a.rhos:
        for p in a.ps:
            prob = rands.problems.make("clustered", k=a.k, p=p, rho=rho, delta=DELTA, means=a.means)
            for base in a.bases:
                for meth in a.methods:
                    proc, params = _method(meth, prob, p, base, pilot=a.pilot)
                    if base == "kt" and a.kt_g:
                        params["base_params"] = {"g": a.kt_g}
                    t0 = time.time()
                    row = {"k": a.k, "p": p, "rho": rho, "base": base, "method": meth, "means": a.means,
                           "n0": N0, **_cell(prob, proc, params, a.reps, a.seed,
                                             truth=prob.clusters if meth in ("split", "reuse") else None)}
                    rows.append(row)
                    _save(part, rows, meta)
                    print(f"{part} rho={rho} p={p} {base} {meth}: N={row['mean_samples']:.0f} "
                          f"PCS={row['pcs']:.3f} ({time.time() - t0:.0f}s)", flush=True)


def part_pcs(a) -> None:
    """PCS where clustering is hardest: rho = 0.5, small n0 (findings: reuse fell to 0.86-0.91)."""
    rows, meta = [], _meta(a)
    for n0 in a.n0s:
        prob = rands.problems.make("clustered", k=a.k, p=16, rho=0.5, delta=DELTA)
        for meth in a.methods:
            proc, params = _method(meth, prob, 16, "kn", n0=n0)
            t0 = time.time()
            head = {"k": a.k, "p": 16, "rho": 0.5, "n0": n0, "base": "kn", "method": meth}
            name = "pcs" + (f"_{a.tag}" if a.tag else "")
            reps = a.reps if meth == "split" else min(a.reps, a.other_reps)
            row = {**head, **_cell(prob, proc, params, reps, a.seed,
                                   partial=lambda d: _save(name, rows + [{**head, **d}], meta))}
            rows.append(row)
            _save("pcs" + (f"_{a.tag}" if a.tag else ""), rows, meta)
            print(f"pcs n0={n0} {meth}: PCS={row['pcs']:.3f} {row['pcs_ci']} N={row['mean_samples']:.0f} "
                  f"({time.time() - t0:.0f}s)", flush=True)


def part_budget(a) -> None:
    """Fixed budget N = c k: screening-free P3C vs DC vs EFG / OCBA / FBKT / equal over all systems."""
    rows, meta = [], _meta(a)
    avail = rands.procedures.names()
    for rho in a.rhos:
        prob = rands.problems.make("clustered", k=a.k, p=16, rho=rho, delta=DELTA)
        for c in a.cs:
            N = int(c * a.k)
            meths = [("p3c", {"n_clusters": 16, "n0": N0, "budget": N}),
                     ("dc", {"n_groups": 16, "n0": N0, "budget": N}),
                     ("p3c-oracle", {"partition": prob.clusters.tolist(), "n0": N0, "budget": N})]
            for nm in ("efg", "ocba", "fbkt", "equal", "efg+"):
                if nm in avail:
                    meths.append((nm, {"budget": N}))
            for nm, params in meths:
                proc = "p3c" if nm == "p3c-oracle" else nm
                cls = rands.procedures.procedure_class(proc)
                valid = cls._param_names()
                if "n0" in valid and "n0" not in params:
                    params["n0"] = N0
                if "crn" in valid and proc not in ("p3c", "dc"):
                    params["crn"] = a.crn_all
                if proc in ("efg", "efg+") and a.efg_batch:
                    params["batch"] = a.efg_batch
                t0 = time.time()
                try:
                    cell = _cell(prob, proc, params, a.reps, a.seed)
                except Exception as exc:  # noqa: BLE001  (record, keep going)
                    print(f"budget {nm} failed: {exc!r}", flush=True)
                    continue
                row = {"k": a.k, "rho": rho, "c": c, "budget": N, "method": nm, **cell}
                rows.append(row)
                _save("budget" + (f"_{a.tag}" if a.tag else ""), rows, meta)
                print(f"budget rho={rho} c={c} {nm}: PCS={row['pcs']:.3f} ({time.time() - t0:.0f}s)", flush=True)


def _pilot(prob, n0: int, seed) -> np.ndarray:
    k = prob.k
    return prob.simulate(np.repeat(np.arange(k), n0), np.tile(np.arange(n0), k),
                         Streams(seed, crn=True)).reshape(k, n0)


def part_ari(a) -> None:
    rows, meta = [], _meta(a)
    for rho in a.rhos:
        prob = rands.problems.make("clustered", k=a.k, p=16, rho=rho, delta=DELTA)
        for n0 in a.n0s:
            for init in ("greedy", "plain"):
                aris = []
                for m in range(a.reps):
                    x = _pilot(prob, n0, (a.seed, m))
                    if init == "greedy":
                        res = spherical_kmeans(x, 16, seed=(a.seed, m), n_init=3)
                    else:   # plain k-means++ (one candidate per centre), one start
                        res = spherical_kmeans(x, 16, seed=(a.seed, m), n_init=1, n_candidates=1)
                    aris.append(adjusted_rand_index(prob.clusters, res.labels))
                row = {"k": a.k, "p": 16, "rho": rho, "n0": n0, "init": init, "reps": a.reps,
                       "mean_ari": float(np.mean(aris)), "min_ari": float(np.min(aris)),
                       "frac_ari_below_0.9": float(np.mean(np.asarray(aris) < 0.9))}
                rows.append(row)
                _save("ari" + (f"_{a.tag}" if a.tag else ""), rows, meta)
                print(f"ari rho={rho} n0={n0} {init}: {row['mean_ari']:.3f}", flush=True)


def part_rho0(a) -> None:
    """No cluster structure: P3C costs at most the pilot more than DC."""
    rows, meta = [], _meta(a)
    for p in a.ps:
        prob = rands.problems.make("clustered", k=a.k, p=p, rho=0.0, delta=DELTA)
        for base in a.bases:
            for meth in ("split", "dc"):
                proc, params = _method(meth, prob, p, base)
                row = {"k": a.k, "p": p, "rho": 0.0, "base": base, "method": meth,
                       **_cell(prob, proc, params, a.reps, a.seed)}
                rows.append(row)
                _save("rho0" + (f"_{a.tag}" if a.tag else ""), rows, meta)
                print(f"rho0 p={p} {base} {meth}: N={row['mean_samples']:.0f} pilot={row['mean_pilot']:.0f}",
                      flush=True)


def part_cost(a) -> None:
    """Clustering time and peak memory vs k (m = 16, n0 = 10)."""
    rows, meta = [], _meta(a)
    spherical_kmeans(np.random.default_rng(0).standard_normal((5000, 10)), 16, seed=0)   # compile
    for k in a.ks:
        prob = rands.problems.make("clustered", k=k, p=16, rho=0.9, delta=DELTA)
        x = _pilot(prob, 10, 0)
        tracemalloc.start()
        t0 = time.perf_counter()
        res = spherical_kmeans(x, 16, seed=0, n_init=a.n_init)
        dt = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        iters = sum(i["n_iter"] for i in res.inits)
        row = {"k": k, "m": 16, "n0": 10, "n_init": a.n_init, "seconds": dt, "peak_mib": peak / 2 ** 20,
               "pilot_mib": x.nbytes / 2 ** 20, "lloyd_iters": iters,
               "ns_per_k_m_n0_iter": dt * 1e9 / (k * 16 * 10 * max(iters, 1)),
               "ari": adjusted_rand_index(prob.clusters, res.labels)}
        rows.append(row)
        _save("cost" + (f"_{a.tag}" if a.tag else ""), rows, meta)
        print(f"cost k={k}: {dt:.2f}s peak {row['peak_mib']:.1f} MiB iters {iters}", flush=True)
        del x


def part_big(a) -> None:
    """P3C end to end at k = 10^6 (m = 16, n0 = 10): clusters of 62,500 run KT (no quadratic structure)."""
    rows, meta = [], _meta(a)
    prob = rands.problems.make("clustered", k=a.k, p=16, rho=a.rhos[0], delta=DELTA)
    for meth in a.methods:
        proc, params = _method(meth, prob, 16, "kn")
        if a.kt_g:
            params["large_base_params"] = {"g": a.kt_g}
        tracemalloc.start()
        t0 = time.time()
        r = rands.select(prob, proc, seed=(a.seed, 0), **params)
        dt = time.time() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        row = {"k": a.k, "p": 16, "rho": a.rhos[0], "method": meth, "best": r.best, "correct": r.best == 0,
               "total_samples": r.total_samples, "per_system": r.total_samples / a.k, "seconds": dt,
               "peak_mib": peak / 2 ** 20, "pilot": r.extras["pilot_samples"],
               "within": r.extras["within_samples"], "final": r.extras["final_samples"],
               "max_group": int(max(r.extras["group_sizes"]))}
        if "labels" in r.extras and meth != "dc":
            row["ari"] = adjusted_rand_index(prob.clusters, np.asarray(r.extras["labels"]))
        rows.append(row)
        _save(f"big_k{a.k}", rows, meta)
        print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["grid", "pcs", "budget", "ari", "rho0", "cost", "big"])
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--ks", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--ps", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--rhos", type=float, nargs="+", default=None)
    ap.add_argument("--bases", nargs="+", default=["kn", "kt"])
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--n0s", type=int, nargs="+", default=None)
    ap.add_argument("--cs", type=float, nargs="+", default=[10, 20, 50])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--pilot", type=int, default=None)
    ap.add_argument("--means", default="slippage")
    ap.add_argument("--n_init", type=int, default=3)
    ap.add_argument("--crn_all", action="store_true", help="run EFG/OCBA/FBKT with CRN too")
    ap.add_argument("--efg_batch", type=int, default=None, help="EFG's batch (samples per greedy step)")
    ap.add_argument("--other_reps", type=int, default=10**9, help="pcs: macroreps for methods other than split")
    ap.add_argument("--tag", default="")
    ap.add_argument("--kt_g", type=int, default=None, help="KT group size g inside clusters/groups")
    a = ap.parse_args()
    defaults = {"grid": (1024, [0.5, 0.9, 0.99], ["split", "reuse", "oracle", "dc"], None),
                "pcs": (256, None, ["split", "reuse", "oracle", "dc"], [5, 10]),
                "budget": (1024, [0.9, 0.99, 0.5], None, None),
                "ari": (1024, [0.5, 0.7, 0.9, 0.99], None, [3, 5, 10, 20]),
                "rho0": (1024, None, None, None), "cost": (None, None, None, None),
                "big": (1_000_000, [0.9], ["split", "dc"], None)}
    k, rhos, methods, n0s = defaults[a.part]
    a.k = a.k or k
    a.rhos = a.rhos or rhos
    a.methods = a.methods or methods
    a.n0s = a.n0s or n0s
    {"grid": part_grid, "pcs": part_pcs, "budget": part_budget, "ari": part_ari, "rho0": part_rho0,
     "cost": part_cost, "big": part_big}[a.part](a)


if __name__ == "__main__":
    main()
