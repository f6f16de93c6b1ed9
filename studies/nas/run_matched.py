"""Matched-budget comparison (issue 14): KN, then equal / OCBA / screening-free P3C / fixed-budget DC at
KN's mean sample size, on the NAS table and on synthetic controls with the same means.

    nice -n 10 python studies/nas/run_matched.py --scenario nas_wor --top 100 --macroreps 100
    nice -n 10 python studies/nas/run_matched.py --scenario synth_rho0.9 --top 100 --macroreps 100
    python studies/nas/run_matched.py --report          # results_matched/*.json -> results_matched/tables.md

``--source F --out-dir D`` runs on another recorded table (the rebuilt one: ``--source
applications/nas/data/mini_digits_fixed.json --out-dir studies/nas/results_fixed``).

Systems: the ``--top`` architectures of the benchmark by true mean (mean over its recorded seeds), so the
hard part of the problem (3 architectures within delta = 0.5 of the best) is kept at a fraction of the cost.
Scenarios:

- ``nas_wr`` / ``nas_wor``: the recorded table itself, seeds drawn with / without replacement within a
  macroreplication (TabularNAS sampling), CRN (every architecture reads the same seed index).
- ``synth_rho{R}``: independent normal outputs with the table's means and per-architecture seed sds, and
  under CRN correlation R between architectures of the same planted cluster (0 across clusters). Clusters
  are architecture-derived: the operation on the cell's input->output edge (|...~0| of node 3), 5 clusters.
  R = 0 is the control without structure. ``synth_rank_rho{R}``: the same with 5 clusters of
  consecutive true ranks (the top 20 together), the structure most favourable to clustering.

Every procedure runs with CRN and the same macroreplication seeds (paired). KN: alpha = 0.05, delta,
n0 = 10. The fixed-budget procedures then get N = round(KN's mean total samples) (matched) and N = c k for
each ``--c`` (default 10). On a table of m seeds sampled without replacement, c >= m lets equal allocation
read every seed of every architecture, i.e. the truth: only c < m is informative there.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import rands
from rands.applications.nas.analysis import benchmark_summary
from rands.applications.nas.tabular import MINI_PATH, TabularNAS
from rands.problems.normal import NormalProblem

HERE = Path(__file__).resolve().parent
OUT = HERE / "results_matched"


def base_table(source: Path, top: int) -> TabularNAS:
    prob = TabularNAS.from_file(source)
    order = np.lexsort((np.arange(prob.k), -prob.true_means))[:top]
    order = np.sort(order)
    return TabularNAS(prob.table[order], [prob.archs[i] for i in order], source=prob.source,
                      dataset=prob.dataset, metric=prob.metric)


def planted_clusters(archs) -> np.ndarray:
    """Cluster = operation on the input -> output edge (the first op of node 3's group)."""
    first3 = [a.split("+")[2].strip("|").split("|")[0].split("~")[0] for a in archs]
    names = sorted(set(first3))
    return np.array([names.index(x) for x in first3], dtype=np.int64)


def scenario_problem(name: str, tab: TabularNAS):
    if name == "nas_wr":
        return tab.with_sampling("with_replacement")
    if name == "nas_wor":
        return tab.with_sampling("without_replacement")
    if name.startswith("synth_"):
        kind, rho = name[len("synth_"):].split("rho")
        sd = np.nanstd(tab.table, axis=1, ddof=1)
        sd = np.maximum(sd, 0.1)  # a constant architecture would get sigma 0
        if kind == "":
            clusters = planted_clusters(tab.archs)
        elif kind == "rank_":  # 5 blocks of consecutive true ranks: the best systems share a cluster
            rank = np.argsort(np.argsort(-tab.true_means, kind="stable"), kind="stable")
            clusters = (rank * 5) // tab.k
        else:
            raise SystemExit(f"unknown scenario {name!r}")
        return NormalProblem(tab.true_means, sd, rho=float(rho), clusters=clusters)
    raise SystemExit(f"unknown scenario {name!r}")


def run(args) -> None:
    tab = base_table(Path(args.source), args.top)
    prob = scenario_problem(args.scenario, tab)
    mu = np.asarray(prob.true_means)
    out = Path(args.out_dir) / (f"{args.scenario}_top{args.top}" + ("" if args.groups == 16 else f"_g{args.groups}")
                 + ("" if args.macroreps == 100 else f"_m{args.macroreps}")
                 + ("" if args.delta == 0.5 else f"_d{args.delta:g}") + ".json")
    data = json.loads(out.read_text()) if out.exists() else {"runs": []}
    summary = benchmark_summary(mu, args.delta)
    data.update({"scenario": args.scenario + ("" if args.groups == 16 else f" ({args.groups} clusters/groups)")
                 + ("" if args.macroreps == 100 else f" [{args.macroreps} macroreps]")
                 + ("" if args.delta == 0.5 else f" delta {args.delta:g}"),
                 "source": str(Path(args.source).name), "top": args.top, "groups": args.groups,
                 "macroreps": args.macroreps, "seed": args.seed, "delta": args.delta, "benchmark": summary,
                 "median_sd": float(np.median(np.nanstd(tab.table, axis=1, ddof=1))),
                 "clusters": (np.bincount(prob.clusters).tolist() if hasattr(prob, "clusters") else None),
                 "command": "python studies/nas/run_matched.py " + " ".join(sys.argv[1:])})
    done = {(r["label"], r["budget"]) for r in data["runs"]}
    k = prob.k

    def go(label, name, params):
        budget = params.get("budget")
        if (label, budget) in done:
            return next(r for r in data["runs"] if (r["label"], r["budget"]) == (label, budget))
        t0 = time.time()
        v = rands.validate(prob, rands.procedures.make(name, **params), macroreps=args.macroreps,
                           seed=args.seed, pgs_delta=args.delta)
        rec = {"label": label, "name": name, "params": params, "budget": budget, "pcs": v.pcs,
               "pcs_ci": list(v.pcs_ci), "pgs": v.pgs, "pgs_ci": list(v.pgs_ci), "mean_samples": v.mean_samples,
               "sd_samples": v.sd_samples, "seconds": time.time() - t0}
        data["runs"].append(rec)
        out.write_text(json.dumps(data, indent=1))
        print(f"{label:7s} N={budget!s:7s} PCS {v.pcs:.3f} PGS {v.pgs:.3f} samples/k {v.mean_samples / k:.1f} "
              f"{rec['seconds']:.0f}s", flush=True)
        return rec

    kn = go("KN", "kn", {"alpha": 0.05, "delta": args.delta, "n0": 10, "crn": True})
    for N in [int(round(kn["mean_samples"]))] + [c * k for c in args.c]:
        go("equal", "equal", {"budget": N, "crn": True})
        go("OCBA", "ocba", {"budget": N, "n0": 5, "crn": True})
        go("P3C-sf", "p3c", {"budget": N, "n0": 5, "n_clusters": args.groups})
        go("DC-sf", "dc", {"budget": N, "n0": 5, "n_groups": args.groups})


def summary(files) -> list:
    """One row per scenario: KN, then PCS / PGS of each fixed-budget procedure at KN's mean and at N = c k."""
    procs = ["equal", "OCBA", "P3C-sf", "DC-sf"]
    lines = ["| scenario | KN PCS / PGS (samples/k) | budget N/k | " + " | ".join(procs) + " |",
             "|---|---|---|" + "---|" * len(procs)]
    for f in files:
        d = json.loads(f.read_text())
        k = d["benchmark"]["k"]
        kn = next(r for r in d["runs"] if r["label"] == "KN")
        budgets = []
        for r in d["runs"]:
            if r["budget"] is not None and r["budget"] not in budgets:
                budgets.append(r["budget"])
        for i, N in enumerate(budgets):
            cells = []
            for p in procs:
                r = next((r for r in d["runs"] if r["label"] == p and r["budget"] == N), None)
                cells.append("-" if r is None else f"{r['pcs']:.2f} / {r['pgs']:.2f}")
            head = (f"{d['scenario']} | {kn['pcs']:.2f} / {kn['pgs']:.2f} ({kn['mean_samples'] / k:.0f})" if i == 0
                    else " | ")
            tag = " (= KN)" if N == int(round(kn["mean_samples"])) else ""
            lines.append(f"| {head} | {N / k:.1f}{tag} | " + " | ".join(cells) + " |")
    return lines


def report(out_dir: Path = OUT) -> str:
    files = sorted(out_dir.glob("*.json"))
    lines = ["# Matched-budget PCS / PGS (generated by `python studies/nas/run_matched.py --report`)", "",
             "Summary: PCS / PGS (100 macroreplications each unless marked: Wilson 95 % half-width up to 0.10; "
             "per-run CIs below).", ""] + summary(files) + [""]
    for f in files:
        d = json.loads(f.read_text())
        b = d["benchmark"]
        kn = next(r for r in d["runs"] if r["label"] == "KN")
        lines += [f"## {d['scenario']} (top {d['top']} of {d['source']}; {d['macroreps']} macroreplications, "
                  f"CRN, delta = {d['delta']})", "",
                  f"k = {b['k']}, best {b['best_mean']:.3f}, gap to runner-up {b['gap']:.3f}, "
                  f"{b['n_within_delta']} within delta; median seed sd {d['median_sd']:.2f}; planted clusters "
                  f"(synthetic only) sizes {d['clusters']}. Command: `{d['command']}`", "",
                  "| procedure | N / k | PCS [95 % CI] | PGS [95 % CI] | mean samples / k |", "|---|---|---|---|---|"]
        for r in d["runs"]:
            nk = "KN (fixed precision)" if r["budget"] is None else f"{r['budget'] / b['k']:.1f}"
            lines.append(f"| {r['label']} | {nk} | {r['pcs']:.3f} [{r['pcs_ci'][0]:.2f}, {r['pcs_ci'][1]:.2f}] | "
                         f"{r['pgs']:.3f} [{r['pgs_ci'][0]:.2f}, {r['pgs_ci'][1]:.2f}] | "
                         f"{r['mean_samples'] / b['k']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario")
    ap.add_argument("--source", default=str(MINI_PATH))
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--macroreps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--delta", type=float, default=0.5)
    ap.add_argument("--groups", type=int, default=16)
    ap.add_argument("--c", type=int, nargs="+", default=[10], help="also run at N = c k for these c")
    ap.add_argument("--out-dir", default=str(OUT),
                    help="results folder (one JSON per scenario, tables.md); one folder per source table")
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.report:
        text = report(out_dir)
        (out_dir / "tables.md").write_text(text)
        print(text)
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
