"""Tables (markdown) and plots from the recorded NAS study results.

    python studies/nas/make_report.py      # reads studies/nas/results/*.json, writes tables.md + PNGs
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rands.validation import wilson_interval  # noqa: E402

HERE = Path(__file__).resolve().parent
RES = HERE / "results"
FB_ORDER = ["equal", "OCBA", "EFG", "EFG+", "FBKT", "P3C-sf", "DC-sf"]
FP_ORDER = ["KN", "KT", "P3C-KN", "DC-KN"]


def load_selection() -> tuple[dict, list[dict]]:
    """Runs of every results/selection*.json (same benchmark and delta). Runs of one
    (label, c) found in several files (independent macroreplication seeds) are pooled."""
    files = sorted(RES.glob("selection*.json"))
    if not files:
        return {}, []
    head, runs = None, []
    for f in files:
        d = json.loads(f.read_text())
        if head is None:
            head = d
        elif (d["benchmark"]["source"], d["benchmark"]["seeds"], d["delta"]) != \
                (head["benchmark"]["source"], head["benchmark"]["seeds"], head["delta"]):
            raise SystemExit(f"{f.name} was run on another benchmark/settings than {files[0].name}")
        for r in d["runs"]:
            runs.append({**r, "macroreps": d["macroreps"], "seed": d["seed"], "file": f.name})
    pooled: dict[tuple, list[dict]] = {}
    for r in runs:
        pooled.setdefault((r["label"], r["c"]), []).append(r)
    out = []
    for rs in pooled.values():
        if len(rs) == 1:
            out.append(rs[0])
            continue
        m = sum(r["macroreps"] for r in rs)
        r = dict(rs[0])
        for metric in ("pcs", "pgs"):
            hits = int(round(sum(x[metric] * x["macroreps"] for x in rs)))
            r[metric] = hits / m
            r[metric + "_ci"] = list(wilson_interval(hits, m))
        w = np.array([x["macroreps"] for x in rs], dtype=float)
        mean = float(np.sum(w * [x["mean_samples"] for x in rs]) / m)
        ex2 = np.sum([(x["sd_samples"] ** 2 * (x["macroreps"] - 1) + x["macroreps"] * x["mean_samples"] ** 2)
                      for x in rs])
        r.update({"macroreps": m, "seed": [x["seed"] for x in rs], "mean_samples": mean,
                  "sd_samples": float(np.sqrt(max(0.0, (ex2 - m * mean ** 2) / (m - 1)))),
                  "samples_per_system": mean / head["benchmark"]["k"],
                  "rank_hist": np.sum([x["rank_hist"] for x in rs], axis=0).tolist(),
                  "file": [x["file"] for x in rs]})
        out.append(r)
    return head, out


def pgs_good(b: dict, dw: float) -> int:
    """Number of architectures with mean > best - dw (needs them all among the recorded top 10)."""
    return int(sum(m > b["top10"][0] - dw * (1 - 1e-9) for m in b["top10"]))


def pgs_wide(r: dict, b: dict, dw: float) -> float:
    """PGS at zone dw from the histogram of the selected architectures' true ranks (no ties assumed)."""
    n = pgs_good(b, dw)
    return float(sum(r["rank_hist"][:n]) / sum(r["rank_hist"]))


def ci(r, m):
    return f"{r[m]:.3f} [{r[m + '_ci'][0]:.2f}, {r[m + '_ci'][1]:.2f}]"


def selection_tables(head: dict, runs: list[dict]) -> str:
    b = head["benchmark"]
    lines = [f"Benchmark: {b['source']} (seeds {b['seeds']}), k = {b['k']}, delta = {head['delta']} points, "
             f"macroreplications per procedure in the table (n), CRN.",
             f"Best {b['best_mean']:.3f}% ({b['best_arch']}), runner-up {b['runner_up_mean']:.3f}% "
             f"(gap {b['gap']:.3f} points); {b['n_within_delta']} architecture(s) within delta "
             f"(the PGS good set); median per-architecture seed sd {b['median_seed_sd']:.2f} points.", ""]
    cs = sorted({r["c"] for r in runs if r["c"] is not None})
    for metric in ("pcs", "pgs"):
        lines += [f"**{metric.upper()} vs budget N = c k** (Wilson 95% CI)", "",
                  "| procedure | " + " | ".join(f"c = {c}" for c in cs) + " |",
                  "|---|" + "---|" * len(cs)]
        for lab in FB_ORDER:
            row = {r["c"]: r for r in runs if r["label"] == lab}
            if row:
                lines.append(f"| {lab} | " + " | ".join(ci(row[c], metric) if c in row else "-" for c in cs)
                             + " |")
        lines.append("")
    ns = sorted({r["macroreps"] for r in runs if r["c"] is not None})
    lines += [f"(fixed-budget cells: n = {ns} macroreplications)", ""]
    wide = [dw for dw in (1.5, 2.5) if b["top10"][-1] <= b["top10"][0] - dw]
    if wide:
        lines += ["**PGS at wider indifference zones** (from the true rank of each selected "
                  "architecture; " + ", ".join(f"{pgs_good(b, dw)} architectures within {dw}" for dw in wide)
                  + "); cells: " + " / ".join(f"PGS(delta={dw})" for dw in wide), "",
                  "| procedure | " + " | ".join(f"c = {c}" for c in cs) + " | fixed precision |",
                  "|---|" + "---|" * (len(cs) + 1)]
        for lab in FB_ORDER + FP_ORDER:
            row = {r["c"]: r for r in runs if r["label"] == lab}
            if row:
                lines.append(f"| {lab} | " + " | ".join(
                    " / ".join(f"{pgs_wide(row[c], b, dw):.3f}" for dw in wide) if c in row else "-"
                    for c in cs + [None]) + " |")
        lines.append("")
    lines += ["**Fixed-precision procedures** (alpha = 0.05, delta as above)", "",
              "| procedure | PCS | PGS | mean samples / k | sd samples / k | n |", "|---|---|---|---|---|---|"]
    for lab in FP_ORDER:
        for r in runs:
            if r["label"] == lab:
                lines.append(f"| {lab} | {ci(r, 'pcs')} | {ci(r, 'pgs')} | {r['samples_per_system']:.1f} | "
                             f"{r['sd_samples'] / b['k']:.1f} | {r['macroreps']} |")
    return "\n".join(lines) + "\n"


def selection_plot(head: dict, runs: list[dict]) -> None:
    k = head["benchmark"]["k"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    cmap = plt.get_cmap("tab10")
    for ax, metric in zip(axes, ("pcs", "pgs")):
        for n, lab in enumerate(FB_ORDER):
            rs = sorted((r for r in runs if r["label"] == lab), key=lambda r: r["c"])
            if not rs:
                continue
            x = [r["mean_samples"] / k for r in rs]
            y = [r[metric] for r in rs]
            lo = [max(0.0, r[metric] - r[metric + "_ci"][0]) for r in rs]
            hi = [max(0.0, r[metric + "_ci"][1] - r[metric]) for r in rs]
            ax.errorbar(x, y, yerr=[lo, hi], marker="o", ms=4, capsize=2, color=cmap(n), label=lab)
        for n, lab in enumerate(FP_ORDER):
            for r in runs:
                if r["label"] == lab:
                    ax.errorbar([r["samples_per_system"]], [r[metric]],
                                yerr=[[max(0.0, r[metric] - r[metric + "_ci"][0])],
                                      [max(0.0, r[metric + "_ci"][1] - r[metric])]],
                                marker="*^sD"[n], ms=10, ls="none", capsize=2, color=cmap(7 + n % 3)
                                if n < 3 else "k", label=f"{lab} (fixed precision)")
        ax.set_xscale("log")
        ax.set_xlabel("mean samples per architecture (N / k)")
        ax.set_title(f"{metric.upper()} (delta = {head['delta']} points)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probability")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Mini NAS-Bench-201 (digits), k = {k}, seeds {head['benchmark']['seeds']}, CRN, "
                 f">= {min(r['macroreps'] for r in runs)} macroreps")
    fig.tight_layout()
    fig.savefig(HERE / "pcs_pgs_vs_budget.png", dpi=120)
    plt.close(fig)


def clustering_tables(d: dict) -> str:
    s = d["summary"]
    lines = [f"P3C pilot (n0 = {d['pilot']} CRN samples per architecture) + spherical k-means into "
             f"{d['clusters']} clusters, {d['reps']} independent pilots; benchmark {d['benchmark']['source']} "
             f"(seeds {d['benchmark']['seeds']}).", "",
             "| statistic | mean | sd over pilots |", "|---|---|---|",
             f"| shared edge operations, pairs within a cluster | {s['shared_within']['mean']:.3f} | "
             f"{s['shared_within']['sd']:.3f} |",
             f"| shared edge operations, pairs across clusters | {s['shared_across']['mean']:.3f} | "
             f"{s['shared_across']['sd']:.3f} |",
             f"| shared edge operations, all pairs (random-partition baseline) | {s['shared_all_pairs']:.3f} | - |"]
    for g, v in s["ari"].items():
        lines.append(f"| ARI vs {g} | {v['mean']:.3f} | {v['sd']:.3f} |")
    lines.append(f"| mean seed-to-seed correlation of two architectures (full table, all pairs) | "
                 f"{s['table_corr_all_pairs']:.3f} | - |")
    lines.append(f"| same, pairs within a full-table cluster | {s['table_corr_within_full_clusters']:.3f} | - |")
    lines.append(f"| mean pilot correlation within a P3C cluster (pair-weighted) | "
                 f"{s['pilot_corr_within_clusters']['mean']:.3f} | {s['pilot_corr_within_clusters']['sd']:.3f} |")
    for t, v in s.get("permutation", {}).items():
        lines.append(f"| permutation test of {t} (same cluster sizes): mean z / share of pilots with p < 0.05 | "
                     f"{v['z_mean']:.2f} / {v['frac_p_below_0.05']:.2f} | - |")
    if s.get("stability_ari"):
        lines.append(f"| ARI between two pilots (stability) | {s['stability_ari']['mean']:.3f} | "
                     f"{s['stability_ari']['sd']:.3f} |")
    f = d["full_table_clustering"]
    lines += ["", f"Clustering of the full table (every recorded seed a coordinate): shared ops within "
              f"{f['shared_ops']['within']:.3f} vs across {f['shared_ops']['across']:.3f}; ARI vs " +
              ", ".join(f"{g} {v:.3f}" for g, v in f["ari"].items()) + ".", "",
              f"Per cluster (pilot {d.get('per_cluster_rep', 0)}, the first that used all clusters; ordered by mean "
              f"true accuracy):", "",
              "| size | mean acc | max acc | degenerate | conv3 on path | mean #none | none | skip | conv1x1 | "
              "conv3x3 | avgpool | best? |", "|---" * 12 + "|"]
    for c in d["per_cluster_first_rep"]:
        o = c["op_freq"]
        lines.append(f"| {c['size']} | {c['mean_acc']:.1f} | {c['max_acc']:.1f} | {c['degenerate_frac']:.2f} | "
                     f"{c['conv3_path_frac']:.2f} | {c['mean_n_none']:.2f} | {o['none']:.2f} | "
                     f"{o['skip_connect']:.2f} | {o['nor_conv_1x1']:.2f} | {o['nor_conv_3x3']:.2f} | "
                     f"{o['avg_pool_3x3']:.2f} | {'yes' if c['has_best'] else ''} |")
    lines.append(f"\nArchitectures with a zero-variance pilot (that pilot): "
                 f"{d['n_zero_variance_pilot_first_rep']}. Distinct recorded seeds read by each pilot: "
                 f"{d.get('distinct_seeds_in_pilot')}; clusters used per pilot: "
                 f"{[r['n_clusters_used'] for r in d['per_rep']]}.")
    return "\n".join(lines) + "\n"


def clustering_plot(d: dict) -> None:
    cl = d["per_cluster_first_rep"]
    ops = list(cl[0]["op_freq"])
    freq = np.array([[c["op_freq"][o] for o in ops] for c in cl])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.32 * len(cl) + 2.2), gridspec_kw={"width_ratios": [3, 2]})
    im = a1.imshow(freq, cmap="viridis", vmin=0, vmax=max(0.4, float(freq.max())), aspect="auto")
    for i in range(freq.shape[0]):
        for j in range(freq.shape[1]):
            a1.text(j, i, f"{freq[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    a1.set_xticks(range(len(ops)), [o.replace("nor_", "").replace("_connect", "") for o in ops])
    a1.set_yticks(range(len(cl)), [f"n={c['size']}, acc {c['mean_acc']:.1f}" + (" *" if c["has_best"] else "")
                                   for c in cl], fontsize=7)
    a1.set_title(f"edge-operation share per P3C cluster (pilot {d.get('per_cluster_rep', 0)})")
    fig.colorbar(im, ax=a1, fraction=0.04)
    s = d["summary"]
    names = ["within", "across", "all pairs"]
    vals = [s["shared_within"]["mean"], s["shared_across"]["mean"], s["shared_all_pairs"]]
    errs = [s["shared_within"]["sd"], s["shared_across"]["sd"], 0.0]
    a2.bar(names, vals, yerr=errs, color=["tab:green", "tab:red", "tab:gray"], capsize=3)
    a2.set_ylabel("mean shared edge operations (of 6)")
    a2.set_ylim(min(vals) - 0.1, max(vals) + 0.06)
    a2.set_title(f"shared operations, mean over {d['reps']} pilots")
    for n, v in enumerate(vals):
        a2.text(n, v + 0.02, f"{v:.3f}", ha="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "clustering_ops.png", dpi=120)
    plt.close(fig)


def live_table(d: dict) -> str:
    lines = ["| backend | repeat | wall clock (s) | selection wall_time (s) | load avg before (1/5/15 min) | "
             "best | UTC |", "|---|---|---|---|---|---|---|"]
    for r in d["runs"]:
        la = "/".join(f"{x:.1f}" for x in r["loadavg_before"])
        lines.append(f"| {r['backend']} | {r['repeat']} | {r['wall_s']:.1f} | {r['selection_wall_s']:.1f} | {la} | "
                     f"{r['best']} | {r['utc']} |")
    lines.append(f"\nMedian wall clock: serial {d['serial_wall_median_s']:.1f} s, mpiexec -n 2 "
                 f"{d['mpi2_wall_median_s']:.1f} s (speed-up {d['speedup']:.2f}); same result on both "
                 f"backends: {d['same_result_all_backends']}; machine has {d['nproc']} cores.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """``make_report.py [RESULTS_DIR]``: tables.md and plots go next to the results when a
    directory other than results/ is given (e.g. results_10seeds/)."""
    global RES, HERE
    args = sys.argv[1:] if argv is None else argv
    if args:
        RES = Path(args[0]).resolve()
        HERE = RES
    parts = []
    head, runs = load_selection()
    if runs:
        parts += ["## Selection\n", selection_tables(head, runs)]
        selection_plot(head, runs)
    if (RES / "clustering.json").exists():
        d = json.loads((RES / "clustering.json").read_text())
        parts += ["## Clustering structure\n", clustering_tables(d)]
        clustering_plot(d)
    if (RES / "live_wallclock.json").exists():
        parts += ["## Live problem wall clock\n", live_table(json.loads((RES / "live_wallclock.json").read_text()))]
    (HERE / "tables.md").write_text("\n".join(parts))
    print("\n".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
