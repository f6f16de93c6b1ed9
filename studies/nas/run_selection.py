"""Selection study on the mini NAS-Bench-201 benchmark (digits): PCS/PGS vs budget.

    nice -n 10 python studies/nas/run_selection.py --macroreps 200 \
        --out studies/nas/results/selection.json

Truth = mean over all recorded seeds of each architecture (TabularNAS.true_means).
CRN: every procedure runs with common random numbers, so at replication r every
architecture reads the same recorded seed index (tabular.py). Fixed-budget
procedures run at N = c*k for each c of --c; fixed-precision ones (KN, KT, P3C and
DC with a KN base, alpha=0.05, delta=--delta) are points (mean samples, PCS/PGS).
Results are appended configuration by configuration; a rerun skips the ones done.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import rands
from rands.applications.nas.analysis import benchmark_summary, read_records, table_from_records
from rands.applications.nas.tabular import MINI_PATH, TabularNAS

HERE = Path(__file__).resolve().parent


def load_problem(source: str | None, n_seeds: int | None = None) -> tuple[TabularNAS, dict]:
    """The mini benchmark JSON (default) or a build's partial JSONL (seeds complete for every
    architecture), keeping the first ``n_seeds`` recorded seeds (all when None)."""
    path = Path(source) if source else MINI_PATH
    if path.suffix == ".jsonl":
        prob, seeds = table_from_records(read_records(path))
    else:
        prob = TabularNAS.from_file(path)
        seeds = list(range(prob.table.shape[1]))
    if n_seeds is not None:
        if n_seeds > len(seeds):
            raise SystemExit(f"--n-seeds {n_seeds}: only {len(seeds)} complete seeds in {path}")
        prob = TabularNAS(prob.table[:, :n_seeds], prob.archs, source=prob.source,
                          dataset="digits", metric="x-valid")
        seeds = seeds[:n_seeds]
    try:
        shown = str(path.resolve().relative_to(HERE.parent.parent))
    except ValueError:
        shown = str(path)
    return prob, {"source": shown, "seeds": seeds, "partial": path.suffix == ".jsonl"}


def configs(k: int, cs: list[int], delta: float, n0_fb: int, n0_fp: int, groups: int,
            only: set[str] | None) -> list[dict]:
    """(label, registry name, parameters, c) of every run of the study."""
    out = []
    for c in cs:
        N = int(c * k)
        fb = [("equal", "equal", {"budget": N, "crn": True}),
              ("OCBA", "ocba", {"budget": N, "n0": n0_fb, "crn": True}),
              ("EFG", "efg", {"budget": N, "n0": n0_fb, "crn": True}),
              ("EFG+", "efg+", {"budget": N, "n0": n0_fb, "crn": True}),
              # FBKT's default first stage n0 = 8 unless it would exceed 80% of the budget
              ("FBKT", "fbkt", {"budget": N, "crn": True} if 8 <= 0.8 * c else
               {"budget": N, "crn": True, "n0": max(2, c // 2)}),
              ("P3C-sf", "p3c", {"budget": N, "n0": n0_fb, "n_clusters": groups}),
              ("DC-sf", "dc", {"budget": N, "n0": n0_fb, "n_groups": groups})]
        for label, name, params in fb:
            out.append({"label": label, "name": name, "params": params, "c": c, "kind": "fixed_budget"})
    fp = [("KN", "kn", {"delta": delta, "n0": n0_fp, "crn": True}),
          ("KT", "kt", {"delta": delta, "n0": n0_fp, "crn": True}),
          ("P3C-KN", "p3c", {"base": "kn", "delta": delta, "n0": n0_fp, "n_clusters": groups}),
          ("DC-KN", "dc", {"base": "kn", "delta": delta, "n0": n0_fp, "n_groups": groups})]
    for label, name, params in fp:
        out.append({"label": label, "name": name, "params": {"alpha": 0.05, **params}, "c": None,
                    "kind": "fixed_precision"})
    if only:
        out = [cf for cf in out if cf["label"] in only]
    return out


def key(cf: dict) -> str:
    return f"{cf['label']}|{cf['c']}"


def rank_histogram(selected: np.ndarray, mu: np.ndarray, top: int = 10) -> list[int]:
    """Counts of the selected system's true rank (0 = best; ties share the better rank), last = >= top."""
    ranks = np.array([int(np.sum(mu > mu[s])) for s in selected])
    return np.bincount(np.minimum(ranks, top), minlength=top + 1).tolist()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", help="mini benchmark JSON or partial JSONL (default: the shipped mini)")
    ap.add_argument("--out", default=str(HERE / "results" / "selection.json"))
    ap.add_argument("--macroreps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--delta", type=float, default=0.5, help="indifference zone, accuracy points")
    ap.add_argument("--c", type=int, nargs="+", default=[10, 20, 40, 80], help="budgets N = c*k")
    ap.add_argument("--n0-fb", type=int, default=5, help="first stage of fixed-budget procedures")
    ap.add_argument("--n0-fp", type=int, default=10, help="first stage of fixed-precision procedures")
    ap.add_argument("--groups", type=int, default=16, help="clusters (P3C) / groups (DC)")
    ap.add_argument("--only", nargs="*", help="labels to run (default all)")
    ap.add_argument("--n-seeds", type=int, help="use the first n recorded seeds (default all)")
    args = ap.parse_args(argv)

    prob, info = load_problem(args.source, args.n_seeds)
    mu = np.asarray(prob.true_means)
    summary = benchmark_summary(mu, args.delta)
    summary["best_arch"] = prob.archs[summary["best"]]
    summary["runner_up_arch"] = prob.archs[summary["runner_up"]]
    summary["median_seed_sd"] = float(np.median(np.nanstd(prob.table, axis=1, ddof=1)))
    summary["resolution"] = "accuracy on 597 validation digits: steps of 100/597 = 0.1675 points"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(out.read_text()) if out.exists() else {}
    b = data.get("benchmark", {})
    if b.get("source") != info["source"] or b.get("seeds") != info["seeds"] \
            or data.get("macroreps") != args.macroreps or data.get("delta") != args.delta:
        data = {"runs": []}
    data.update({"benchmark": {**info, **summary}, "macroreps": args.macroreps, "seed": args.seed,
                 "delta": args.delta, "crn": True,
                 "command": "python studies/nas/run_selection.py " + " ".join(sys.argv[1:])})
    done = {key(r) for r in data["runs"]}
    print(json.dumps(data["benchmark"], indent=1), flush=True)
    for cf in (configs(prob.k, args.c, args.delta, args.n0_fb, args.n0_fp, args.groups,
                                   set(args.only) if args.only else None)):
        if key(cf) in done:
            continue
        t0 = time.time()
        proc = rands.procedures.make(cf["name"], **cf["params"])
        v = rands.validate(prob, proc, macroreps=args.macroreps, seed=args.seed,
                           pgs_delta=args.delta)
        rec = {"label": cf["label"], "name": cf["name"], "kind": cf["kind"], "c": cf["c"],
               "budget": cf["params"].get("budget"), "params": cf["params"], "pcs": v.pcs,
               "pcs_ci": list(v.pcs_ci), "pgs": v.pgs, "pgs_ci": list(v.pgs_ci),
               "mean_samples": v.mean_samples, "sd_samples": v.sd_samples,
               "samples_per_system": v.mean_samples / prob.k, "mean_wall_time": v.mean_wall_time,
               "rank_hist": rank_histogram(v.selected, mu), "seconds": time.time() - t0}
        data["runs"].append(rec)
        out.write_text(json.dumps(data, indent=1))
        print(f"{cf['label']:7s} c={cf['c']!s:4s} PCS {v.pcs:.3f} PGS {v.pgs:.3f} "
              f"samples/k {rec['samples_per_system']:.1f}  {rec['seconds']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
