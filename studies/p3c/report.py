"""Tables (markdown, printed and written to results/tables.md) and plots from results/*.json.

    python studies/p3c/report.py
"""
from __future__ import annotations

import glob
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")


def load(part: str):
    path = os.path.join(RES, f"{part}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _ci(r):
    return f"{r['pcs']:.3f} [{r['pcs_ci'][0]:.3f}, {r['pcs_ci'][1]:.3f}]"


def grid_tables(part: str, out: list[str]) -> None:
    d = load(part)
    if d is None:
        return
    rows = d["rows"]
    out.append(f"\n### {part}: mean total samples (PCS), {rows[0]['reps']} macroreps per cell, "
               f"means={rows[0]['means']}\n")
    out.append(f"command: `{d['meta']['command']}`\n")
    out.append("| rho | p | base | split (default) | reuse (unguaranteed) | oracle | DC | DC/split | DC/reuse "
               "| DC/oracle | ARI split |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    key = {}
    for r in rows:
        key[(r["rho"], r["p"], r["base"], r["method"])] = r
    for rho in sorted({r["rho"] for r in rows}):
        for p in sorted({r["p"] for r in rows}):
            for base in ("kn", "kt"):
                cells = {m: key.get((rho, p, base, m)) for m in ("split", "reuse", "oracle", "dc")}
                if not any(cells.values()):
                    continue

                def f(m):
                    c = cells[m]
                    return "" if c is None else f"{c['mean_samples']:.0f} ({c['pcs']:.2f})"

                def ratio(m):
                    if cells["dc"] is None or cells[m] is None:
                        return ""
                    return f"{cells['dc']['mean_samples'] / cells[m]['mean_samples']:.2f}"
                ari = cells["split"]["mean_ari"] if cells["split"] and cells["split"]["mean_ari"] is not None else None
                out.append(f"| {rho} | {p} | {base} | {f('split')} | {f('reuse')} | {f('oracle')} | {f('dc')} | "
                           f"{ratio('split')} | {ratio('reuse')} | {ratio('oracle')} | "
                           f"{'' if ari is None else f'{ari:.2f}'} |")


def combined_plot(k: int, parts: list[str], base: str = "kn") -> None:
    """DC/P3C vs p for one k, merging grids; pilot-10 runs appear as method 'split10'."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = []
    for part in parts:
        d = load(part)
        if d is None:
            continue
        pilot10 = (d["meta"]["args"].get("pilot") == 10)
        for r in d["rows"]:
            if r["base"] == base and r["means"] == "slippage":
                rows.append(dict(r, method="split10" if pilot10 and r["method"] == "split" else r["method"]))
    if not rows:
        return
    dc = {(r["rho"], r["p"]): r["mean_samples"] for r in rows if r["method"] == "dc"}
    fig, ax = plt.subplots(figsize=(7, 5))
    styles = {"split": ("-", "o"), "split10": ("-.", "s"), "reuse": (":", "x"), "oracle": ("--", "^")}
    ps_all = sorted({r["p"] for r in rows})
    for rho, col in zip(sorted({r["rho"] for r in rows}), ("C0", "C1", "C2", "C3")):
        for meth, (ls, mk) in styles.items():
            pts = sorted((r["p"], dc[(rho, r["p"])] / r["mean_samples"]) for r in rows
                         if r["rho"] == rho and r["method"] == meth and (rho, r["p"]) in dc)
            if pts:
                label = {"split": "split, pilot 5 (default)", "split10": "split, pilot 10",
                         "reuse": "reuse (no guarantee)", "oracle": "oracle clusters"}[meth]
                ax.plot(*zip(*pts), ls, marker=mk, color=col, label=f"rho={rho}: {label}")
    ax.plot(ps_all, ps_all, color="grey", lw=0.8, label="ratio = p")
    ax.axhline(1.0, color="black", lw=0.5)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("p (clusters = DC groups)")
    ax.set_ylabel("mean samples DC / mean samples P3C")
    ax.set_title(f"k = {k}, base {base}, slippage, delta 0.5, n0 10")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, f"ratio_k{k}_{base}.png"), dpi=110)
    plt.close(fig)


def grid_plot(part: str) -> None:
    d = load(part)
    if d is None:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = d["rows"]
    key = {(r["rho"], r["p"], r["base"], r["method"]): r for r in rows}
    bases = [b for b in ("kn", "kt") if any(r["base"] == b for r in rows)]
    fig, axes = plt.subplots(1, len(bases), figsize=(6 * len(bases), 4.5), squeeze=False)
    ps_all = sorted({r["p"] for r in rows})
    for ax, base in zip(axes[0], bases):
        for rho, col in zip(sorted({r["rho"] for r in rows}), ("C0", "C1", "C2", "C3")):
            for meth, ls in (("split", "-"), ("reuse", ":"), ("oracle", "--")):
                ps, rat = [], []
                for p in ps_all:
                    a, b = key.get((rho, p, base, "dc")), key.get((rho, p, base, meth))
                    if a and b:
                        ps.append(p)
                        rat.append(a["mean_samples"] / b["mean_samples"])
                if ps:
                    ax.plot(ps, rat, ls, color=col, marker="o", label=f"rho={rho} {meth}")
        ax.plot(ps_all, ps_all, color="grey", lw=0.8, label="ratio = p")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("p (clusters = groups)")
        ax.set_ylabel("DC samples / P3C samples")
        ax.set_title(f"{part}, base {base}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, f"ratio_{part}.png"), dpi=110)
    plt.close(fig)


def simple_table(part: str, cols: list[str], out: list[str], title: str) -> None:
    d = load(part)
    if d is None:
        return
    out.append(f"\n### {title}\n")
    out.append(f"command: `{d['meta']['command']}`\n")
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "---|" * len(cols))
    for r in d["rows"]:
        vals = []
        for c in cols:
            v = r.get(c)
            if c == "pcs" and "pcs_ci" in r:
                v = _ci(r)
            elif isinstance(v, float):
                v = f"{v:.4g}"
            vals.append("" if v is None else str(v))
        out.append("| " + " | ".join(vals) + " |")


def ari_plot() -> None:
    d = load("ari")
    if d is None:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    rows = [r for r in d["rows"] if r["init"] == "greedy"]
    for rho in sorted({r["rho"] for r in rows}):
        rr = sorted((r for r in rows if r["rho"] == rho), key=lambda r: r["n0"])
        ax.plot([r["n0"] for r in rr], [r["mean_ari"] for r in rr], marker="o", label=f"rho={rho}")
    ax.set_xlabel("pilot samples n0")
    ax.set_ylabel("mean adjusted Rand index")
    ax.set_title("clustering accuracy (k=1024, 16 clusters)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "ari.png"), dpi=110)
    plt.close(fig)


def budget_plot() -> None:
    d = load("budget")
    if d is None:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = d["rows"]
    rhos = sorted({r["rho"] for r in rows})
    fig, axes = plt.subplots(1, len(rhos), figsize=(5 * len(rhos), 4), squeeze=False)
    for ax, rho in zip(axes[0], rhos):
        for m in sorted({r["method"] for r in rows}):
            rr = sorted((r for r in rows if r["rho"] == rho and r["method"] == m), key=lambda r: r["c"])
            ax.plot([r["c"] for r in rr], [r["pcs"] for r in rr], marker="o", label=m)
        ax.set_xlabel("c (budget N = c k)")
        ax.set_ylabel("PCS")
        ax.set_title(f"fixed budget, rho={rho}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "budget.png"), dpi=110)
    plt.close(fig)


def main() -> None:
    out: list[str] = ["# P3C study tables (generated by report.py)"]
    for part in sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(RES, "grid_*.json"))):
        grid_tables(part, out)
    combined_plot(1024, ["grid_k1024_kn", "grid_k1024_pilot10", "grid_k1024_pilot10_rho05"], "kn")
    combined_plot(1024, ["grid_k1024_kt10", "grid_k1024_kt"], "kt")
    combined_plot(16384, ["grid_k16384", "grid_k16384_rho099", "grid_k16384_pilot10", "grid_k16384_p128"], "kn")
    for part in ("pcs_n0_10", "pcs_dc300"):
        simple_table(part, ["k", "p", "rho", "n0", "method", "reps", "pcs", "mean_samples", "mean_pilot",
                            "partial"], out,
                     f"PCS where clustering is hardest (rho = 0.5, KN base, nominal 0.95) ({part})")
    for part in ("rho0", "rho0_p16_40reps"):
        simple_table(part, ["k", "p", "base", "method", "reps", "pcs", "mean_samples", "se_samples",
                            "mean_pilot", "mean_within", "mean_final"], out,
                     f"No cluster structure (rho = 0) ({part})")
    simple_table("ari", ["k", "rho", "n0", "init", "reps", "mean_ari", "min_ari", "frac_ari_below_0.9"], out,
                 "Clustering accuracy (adjusted Rand index)")
    simple_table("budget", ["k", "rho", "c", "method", "reps", "pcs", "mean_samples"], out,
                 "Fixed budget N = c k (PCS, Wilson 95%)")
    for part in ("cost", "cost_tol"):
        simple_table(part, ["k", "n_init", "seconds", "peak_mib", "pilot_mib", "lloyd_iters",
                            "ns_per_k_m_n0_iter", "ari"], out, f"Clustering cost ({part}; m=16, n0=10)")
    for p in sorted(glob.glob(os.path.join(RES, "big_*.json"))):
        part = os.path.basename(p)[:-5]
        simple_table(part, ["k", "method", "correct", "total_samples", "per_system", "seconds", "peak_mib",
                            "pilot", "within", "final", "max_group", "ari"], out, f"End to end at k = 10^6 ({part})")
    ari_plot()
    budget_plot()
    text = "\n".join(out) + "\n"
    with open(os.path.join(RES, "tables.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
