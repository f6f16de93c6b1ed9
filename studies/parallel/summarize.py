"""Tables for studies/parallel/README.md from the recorded JSON files.

    python studies/parallel/summarize.py > studies/parallel/results.md
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _load(name: str):
    p = HERE / name
    return json.loads(p.read_text()) if p.exists() else None


def utilization() -> list[str]:
    out = ["## Utilization (2 ranks / 2 workers, ~1 ms samples, cost 5x across systems)", "",
           "| backend | work | workload | samples | wall (s) | utilization per worker | overall |",
           "|---|---|---|---|---|---|---|"]
    for name in sorted(HERE.glob("util_*.json")):
        d = json.loads(name.read_text())
        for wl, r in d["rows"].items():
            per = ", ".join(f"{u:.3f}" for u in (r["utilization_per_worker"] or []))
            out.append(f"| {d['backend']} | {d.get('work', 'cpu')} | {wl} ({r['procedure']}) | "
                       f"{r['total_samples']} | {r['wall_s']:.2f} | {per} | **{r['overall_utilization']:.3f}** |")
    return out


def pyprs() -> list[str]:
    d = _load("pyprs_compare.json")
    if d is None:
        return ["## PyPRS comparison: not run"]
    out = ["## rands vs PyPRS 1.0.0 (2 workers each)", "",
           f"PyPRS install: `{json.dumps(d.get('pyprs_install'))}`", "",
           "| case / procedure | reps | PyPRS wall median (s) | rands wall median (s) | ratio (median) | "
           "ratio (mean) | PyPRS samples | rands samples | PyPRS PCS | rands PCS |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for key, row in d["rows"].items():
        py, rs = row["pyprs"], row["rands"]
        if "error" in py:
            out.append(f"| {key} | {row['macroreps']} | error: {py['error'][-200:]!r} | | | | | | | |")
            continue
        s = row["summary"]
        pm, rm = float(np.median(py["walls"])), float(np.median(rs["walls"]))
        pcs_py = "n/a" if s["pyprs_pcs"] is None else f"{s['pyprs_pcs']:.2f}"
        pcs_rs = "n/a" if s["rands_pcs"] is None else f"{s['rands_pcs']:.2f}"
        out.append(f"| {key} | {row['macroreps']} | {pm:.3f} | {rm:.3f} | **{pm / rm:.1f}x** | "
                   f"{s['wall_ratio_pyprs_over_rands']:.1f}x | {s['pyprs_samples_mean']:.0f} | "
                   f"{s['rands_samples_mean']:.0f} | {pcs_py} | {pcs_rs} |")
    return out


def tpmax() -> list[str]:
    parts = [x for x in (_load("tpmax57624.json"), _load("tpmax57624_fbkt.json")) if x is not None]
    if not parts:
        return ["## TPMax-57,624: not run"]
    d = dict(parts[0])
    d["runs"] = [r for x in parts for r in x["runs"]]
    out = ["## TPMax-57,624 (flow line L = 50), 2 worker processes", "",
           "| procedure | macrorep | total samples | selected | wall (s) | utilization | core-s / sample | "
           "sim-s / sample | PyPRS samples (mean of 100) | PyPRS core-s / sample (48 cores) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in d["runs"]:
        p = d["pyprs"][r["procedure"]]
        label = r["best_label"].replace("|", "\\|")
        out.append(f"| {r['procedure']} | {r['macrorep']} | {r['total_samples']:,} | {label} | "
                   f"{r['wall_s']:.0f} | {r['utilization']:.3f} | {r['core_seconds_per_sample'] * 1e6:.1f} us | "
                   f"{r['sim_seconds_per_sample'] * 1e6:.1f} us | "
                   f"{p['total_samples']:,} | {p['core_seconds_per_sample'] * 1e6:.0f} us |")
    out += ["", "PyPRS's most selected (of 100): " + "; ".join(
        f"{k}: " + ", ".join(f"{p} {n}" for p, n in v.items()) for k, v in d["pyprs_top"].items()),
        "", "PyPRS: 2 x 24-core Xeon Gold 6248R, 48 processors, idle machine; rands: 2 worker "
        "processes at nice 10 on a 2-core machine with load average ~30 (each worker got a "
        "fraction of a core, so core-seconds per sample here overstate rands's true cost)."]
    return out


if __name__ == "__main__":
    print("\n".join(utilization() + [""] + pyprs() + [""] + tpmax()))


def plot(path: Path = HERE / "parallel_summary.png") -> None:
    """Utilization per workload and the PyPRS wall-clock ratio per case (one PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    labels, vals = [], []
    for name in sorted(HERE.glob("util_*.json")):
        d = json.loads(name.read_text())
        for wl, r in d["rows"].items():
            labels.append(f"{d['backend'][:4]}/{d.get('work', 'cpu')}/{wl}")
            vals.append(r["overall_utilization"])
    axes[0].barh(labels, vals, color="tab:blue")
    axes[0].axvline(0.9, color="k", ls="--", lw=1)
    axes[0].set_xlabel("utilization (2 workers)")
    axes[0].set_xlim(0, 1)
    d = _load("pyprs_compare.json")
    if d:
        keys, ratios = [], []
        for key, row in d["rows"].items():
            if "summary" in row:
                keys.append(key)
                ratios.append(float(np.median(row["pyprs"]["walls"]) / np.median(row["rands"]["walls"])))
        axes[1].barh(keys, ratios, color="tab:orange")
        axes[1].set_xscale("log")
        axes[1].axvline(20, color="k", ls="--", lw=1)
        axes[1].set_xlabel("PyPRS wall / rands wall (median, 2 workers)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__" and "--plot" in __import__("sys").argv:
    plot()
