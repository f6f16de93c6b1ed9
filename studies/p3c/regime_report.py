"""Tables (markdown) and the ratio-vs-p plot of the issue 16 review runs (regime.py).

    python studies/p3c/regime_report.py     # writes results/regime_tables.md, ratio_vs_p.png
"""
from __future__ import annotations

import collections
import json
import os

import numpy as np

from regime import read_rows

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")
KS, PS, RHOS, DELTAS = (1024, 4096), (4, 8, 16, 32), (0.5, 0.9, 0.95, 0.99), (0.5, 0.2, 0.1)


def _load(*names) -> dict:
    """Rows by (method, k, p, rho, delta); a row met twice (the same key in two files) counts once."""
    out = collections.defaultdict(list)
    seen = set()
    for nm in names:
        for r in read_rows(os.path.join(RES, nm + ".jsonl")):
            meth, *rest = r["key"]
            if nm.startswith("regime_k") and meth == "p3c":
                meth = "p3c-ac0922e"            # the P3C before n0_auto
            elif (nm.startswith("regime2") or nm.startswith("rho0_")) and meth == "p3c":
                meth = "p3c-cap0.1"             # n0_auto with the old pilot cap
            elif (nm.startswith("regime3") or nm.startswith("rho0b")) and meth == "p3c":
                meth = "p3c-nohead"             # before the head start (= head_start=False)
            elif (nm.startswith("regime4") or nm.startswith("rho0c")) and meth == "p3c":
                meth = "p3c-c1"                 # head start, before kn_c (= kn_c=1, bit for bit)
            if (meth, *rest) in seen:
                continue
            seen.add((meth, *rest))
            out[(meth, *rest[:-1])].append(r)
    return out


def wilson(x: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = x / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (c - h, c + h)


def _mean(rows, f="total"):
    return float(np.mean([r[f] for r in rows])) if rows else float("nan")


def _pcs(rows) -> str:
    n, x = len(rows), sum(r["correct"] for r in rows)
    lo, hi = wilson(x, n)
    return f"{x / n:.3f} [{lo:.3f}, {hi:.3f}] ({n})" if n else ""


def regime_tables(D) -> list[str]:
    L = []
    for k in KS:
        L += [f"### DC / P3C total samples, k = {k} (20 macroreps a cell; PCS of P3C / DC in the last columns)", "",
              "P3C as shipped (head start, kn_c='auto'); the next column: kn_c=1 (the head start alone, "
              "regime4_*); '-': not run.", "",
              "| delta | rho | " + " | ".join(f"p={p}" for p in PS) + " | p/2 met (p<=16) | P3C with c = 1 "
              "p=4/8/16/32 | min PCS P3C / DC |", "|---|---|" + "---|" * len(PS) + "---|---|---|"]
        for d in DELTAS:
            for rho in RHOS:
                cells, old, met, pcs = [], [], [], []
                for p in PS:
                    dc, new, prev = (D[(m, k, p, rho, d)] for m in ("dc", "p3c", "p3c-c1"))
                    r = _mean(dc) / _mean(new) if new else float("nan")
                    cells.append(f"{r:.2f}" if new else "-")
                    old.append(f"{_mean(dc) / _mean(prev):.2f}" if prev else "-")
                    if p <= 16 and new:
                        met.append("y" if r >= p / 2 else "n")
                    if new:
                        pcs.append((np.mean([x["correct"] for x in new]), np.mean([x["correct"] for x in dc])))
                mp = f"{min(a for a, _ in pcs):.2f} / {min(b for _, b in pcs):.2f}" if pcs else ""
                L.append(f"| {d} | {rho} | " + " | ".join(cells) + f" | {''.join(met)} | {'/'.join(old)} | {mp} |")
        L.append("")
    return L


def goal_table(D) -> list[str]:
    """The issue's goal cells (delta = 0.1, rho >= 0.9, p <= 16): DC / P3C, step by step."""
    L = ["### Goal cells: DC / P3C >= p/2 at delta = 0.1, rho >= 0.9, p <= 16 (samples per system, 20 macroreps)", "",
         "P3C columns: no head start (regime3_*), head start with c = 1 (regime4_*), c = 2 forced (regime5c2_*), "
         "as shipped (kn_c='auto', regime5_*; c within = the share of macroreps whose within KN used c = 2).", "",
         "| k | p | rho | DC | P3C no head start | head start, c = 1 | c = 2 | as shipped | c within = 2 | "
         "DC/P3C c = 1 | DC/P3C now | p/2 | met | PCS P3C now (n) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in KS:
        for p in (4, 8, 16):
            for rho in (0.9, 0.95, 0.99):
                dc, new, c1, c2, old = (D[(m, k, p, rho, 0.1)] for m in ("dc", "p3c", "p3c-c1", "p3c-c2",
                                                                           "p3c-nohead"))
                if not dc or not new:
                    continue
                r = _mean(dc) / _mean(new)
                two = np.mean([x.get("c_within") == 2 for x in new])
                L.append(f"| {k} | {p} | {rho} | {_mean(dc) / k:.0f} | {_mean(old) / k:.1f} | {_mean(c1) / k:.1f} | "
                         f"{_mean(c2) / k:.1f} | {_mean(new) / k:.1f} | {two:.2f} | {_mean(dc) / _mean(c1):.2f} | "
                         f"{r:.2f} | {p / 2:g} | {'yes' if r >= p / 2 else 'no'} | {_pcs(new)} |")
    return L + [""]


def c_table(D) -> list[str]:
    """The kn_c='auto' eligibility rule against c = 2 forced, cell by cell (p = 4, 16; same seeds)."""
    L = ["### KN's boundary parameter: c = 2 forced / c = 1, and what kn_c='auto' chose (20 macroreps, same seeds)",
         "", "share = macroreps whose within KN used c = 2 under kn_c='auto'; auto / c1 = as shipped over c = 1.", "",
         "| k | p | delta | rho | c = 1 | c = 2 | c2 / c1 | share c = 2 | auto / c1 |", "|---|---|---|---|---|---|---|---|---|"]
    for k in KS:
        for p in (4, 16):
            for d in DELTAS:
                for rho in RHOS:
                    c1, c2, new = (D[(m, k, p, rho, d)] for m in ("p3c-c1", "p3c-c2", "p3c"))
                    if not c1 or not c2 or not new:
                        continue
                    two = np.mean([x.get("c_within") == 2 for x in new])
                    L.append(f"| {k} | {p} | {d} | {rho} | {_mean(c1) / k:.1f} | {_mean(c2) / k:.1f} | "
                             f"{_mean(c2) / _mean(c1):.3f} | {two:.2f} | {_mean(new) / _mean(c1):.3f} |")
    return L + [""]


def breakdown_table(D) -> list[str]:
    L = ["### Where the samples go (per system, mean of 20 macroreps): delta = 0.1", "",
         "first = the within base's first stage (n0_within systems of groups >= 2); same / cross = "
         "sequential samples of systems in their group's majority true cluster / strays (new samples: "
         "with the head start the pilot's samples count in 'pilot' only); "
         "DC's same / cross are by the same rule on its random groups; p3c = as shipped (head start, "
         "kn_c='auto'), p3c-c1 = kn_c=1, p3c-nohead = head_start=False and kn_c=1.", "",
         "| k | p | rho | method | pilot | first | seq same | seq cross | final | total | DC/P3C | pilot n | "
         "n0 within / final | alpha_w | ARI |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in KS:
        for p in (4, 8, 16):
            for rho in (0.9, 0.95, 0.99):
                dc = D[("dc", k, p, rho, 0.1)]
                for m in ("p3c", "p3c-c1", "p3c-nohead", "dc"):
                    rows = D[(m, k, p, rho, 0.1)]
                    if not rows:
                        continue
                    per = {f: _mean(rows, f) / k for f in ("pilot", "first", "seq_same", "seq_cross", "final",
                                                           "total")}
                    ratio = _mean(dc) / _mean(rows)
                    extra = ("", "", "", "")
                    if m.startswith("p3c"):
                        nw = f"{_mean(rows, 'n0_within'):.0f} / {_mean(rows, 'n0_final'):.0f}" \
                            if "n0_within" in rows[0] else "10 / 10"
                        extra = (f"{_mean(rows, 'pilot_n'):.1f}", nw, f"{_mean(rows, 'alpha_w'):.4f}",
                                 f"{_mean(rows, 'ari'):.3f}")
                    L.append(f"| {k} | {p} | {rho} | {m} | " + " | ".join(f"{per[f]:.1f}" for f in per)
                             + f" | {ratio:.2f} | " + " | ".join(extra) + " |")
    return L + [""]


def rho0_table(D) -> list[str]:
    L = ["### No cluster structure (rho = 0, 20 macroreps unless stated): P3C - DC against the pilot's cost", "",
         "DC' = DC with about the first stage P3C's n0_auto chose at rho = 0 (n0 = 20 at delta 0.5, 40 at 0.2, "
         "60 at 0.1; P3C took 10-20, 40, 60); k = 1024 only.", "",
         "| k | p | delta | DC | P3C | P3C - DC (SE) | pilot | P3C - DC - pilot | DC' | P3C - DC' - pilot | PCS P3C | PCS DC "
         "| P3C without head start |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    dcn0 = {0.5: "dc20", 0.2: "dc40", 0.1: "dc60"}
    for k in KS:
        for p in (4, 16):
            for d in DELTAS:
                dc, pc = D[("dc", k, p, 0.0, d)], D[("p3c", k, p, 0.0, d)]
                old = D[("p3c-nohead", k, p, 0.0, d)]
                mark = ""
                if not pc:
                    pc, mark = D[("p3c-c1", k, p, 0.0, d)], " (c = 1)"
                if not pc:
                    pc, mark = old, " (no head start)"
                if not dc or not pc:
                    continue
                n = min(len(dc), len(pc))
                diff = np.array([a["total"] - b["total"] for a, b in zip(pc[:n], dc[:n])], dtype=float)
                se = diff.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
                pil = _mean(pc, "pilot")
                d2 = D[(dcn0[d], k, p, 0.0, d)]
                fair = (f"{_mean(d2):.0f} ({len(d2)}) | {_mean(pc) - _mean(d2) - pil:.0f}" if d2 else "- | -")
                L.append(f"| {k} | {p} | {d} | {_mean(dc):.0f} | {_mean(pc):.0f}{mark} | {diff.mean():.0f} ({se:.0f}) | "
                         f"{pil:.0f} | {diff.mean() - pil:.0f} | {fair} | {_pcs(pc)} | {_pcs(dc)} | "
                         f"{_mean(old):.0f} |")
    return L + [""]


def dc_variant_table(D, variant: str, label: str, title: str, ks=KS) -> list[str]:
    """DC at n0 = 10, c = 1 (the issue's baseline) against a DC variant and P3C at the goal cells
    (delta = 0.1): how much of P3C's gain the variant could take too."""
    L = [f"### {title} at delta = 0.1 (samples per system, 20 macroreps, same seeds)", "",
         f"| k | p | rho | DC | DC {label} | P3C | DC / P3C | DC {label} / P3C | best DC / P3C | p/2 |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for k in ks:
        for p in (4, 8, 16):
            for rho in (0.9, 0.95, 0.99):
                a, b, c = (D[(m, k, p, rho, 0.1)] for m in ("dc", variant, "p3c"))
                if not a or not b or not c:
                    continue
                best = min(_mean(a), _mean(b))
                L.append(f"| {k} | {p} | {rho} | {_mean(a) / k:.0f} | {_mean(b) / k:.0f} | {_mean(c) / k:.1f} | "
                         f"{_mean(a) / _mean(c):.2f} | {_mean(b) / _mean(c):.2f} | {best / _mean(c):.2f} | {p / 2:g} |")
    return L + [""]


def pcs_table() -> list[str]:
    L = ["### PCS of P3C (nominal 0.95, KN, delta = 0.5, n0 = 10; Wilson 95%)", "",
         "| file | cell | macroreps | PCS [Wilson] | mean samples | mean pilot n | mean ARI | n0 within / final |",
         "|---|---|---|---|---|---|---|---|"]
    labels = {"pcs5": "as shipped", "pcs5_c2": "c = 2 forced", "pcs4": "head start, c = 1"}
    for nm in ("pcs5_hard", "pcs5_rho03", "pcs5_hard_c2", "pcs5_rho03_c2", "pcs4_hard", "pcs4_rho03", "pcs4_head20",
               "pcs2_hard", "pcs3_rho03", "pcs3_rho05", "pcs2_rho03", "pcs_rho03", "pcs_rho05"):
        path = os.path.join(RES, nm + ".jsonl")
        if not os.path.exists(path):
            continue
        rows = list(read_rows(path))
        if not rows:
            continue
        _, k, p, rho, d, _ = rows[0]["key"]
        n0s = f"{_mean(rows, 'n0_within'):.1f} / {_mean(rows, 'n0_final'):.1f}" if "n0_within" in rows[0] else "10 / 10"
        head = labels.get("pcs5_c2" if nm.endswith("_c2") else nm[:4], "no head start")
        L.append(f"| {nm} ({head}) | k={k}, p={p}, rho={rho} | {len(rows)} | {_pcs(rows)} | {_mean(rows):.0f} | "
                 f"{_mean(rows, 'pilot_n'):.2f} | {_mean(rows, 'ari'):.3f} | {n0s} |")
    return L + [""]


def floor_table() -> list[str]:
    """kn_floor.py: KN's cost inside clusters of 256 (known variances vs P3C's first stage)."""
    path = os.path.join(RES, "kn_floor.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = json.load(f)["rows"]
    L = ["### KN's cost floor inside a cluster of 256 (kn_floor.py; samples per system, delta = 0.1)", "",
         "known = variances known (h^2 at nu = infinity, first screening after one sample); otherwise S^2 "
         "from df degrees of freedom and the first screening at r0 = pilot + n0, as P3C's within stage in "
         "that cell. mix = 1 cluster holding the best + 15 tied clusters (the benchmark at p = 16); "
         f"{rows[0]['reps']} simulated clusters of each kind.", "",
         "| rho | c | variances | r0 | best's cluster (SE) | tied cluster (SE) | mix |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        var = "known" if r["df"] is None else f"df {r['df']}"
        L.append(f"| {r['rho']} | {r['c']} | {var} | {r['r0']} | {r['best_cluster']:.1f} ({r['best_cluster_se']:.1f}) | "
                 f"{r['tied_cluster']:.1f} ({r['tied_cluster_se']:.1f}) | {r['mix']:.1f} |")
    return L + [""]


#: fixed-budget result files: the first setting (k = 1024, p = 16) at 50 macroreps, then three more at 30
BUDGET_FILES = ("budget_ocba", "budget_k1024_p4", "budget_k1024_p32", "budget_k4096_p16")


def budget_table() -> list[str]:
    B = collections.defaultdict(list)
    for nm in BUDGET_FILES:
        for r in read_rows(os.path.join(RES, nm + ".jsonl")):
            meth, k, p, rho, d, c, _ = r["key"]
            B[(k, p, d, rho, c, meth)].append(r)
    if not B:
        return []
    meths = ("p3c", "dc", "efg+", "ocba")
    L = ["### Fixed budget N = c k (screening-free P3C; PCS [Wilson 95%] (macroreps))",
         "", "P3C and DC: CRN, p clusters / groups, greedy inside groups, 10 % final; EFG+ (batch 8) and OCBA: "
         "all k systems, independent sampling, the same N. Commands: `results/budget_*.cmd`.", "",
         "| k | p | delta | rho | c | " + " | ".join(meths) + " |", "|---|---|---|---|---|" + "---|" * len(meths)]
    for key in sorted({x[:5] for x in B}):
        L.append("| " + " | ".join(f"{v:g}" for v in key) + " | "
                 + " | ".join(_pcs(B[(*key, m)]) for m in meths) + " |")
    return L + [""]


def plot(D) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(KS), len(DELTAS), figsize=(12, 7), sharex=True, sharey=True)
    for i, k in enumerate(KS):
        for j, d in enumerate(DELTAS):
            ax = axes[i, j]
            for rho in RHOS:
                ys = [(_mean(D[("dc", k, p, rho, d)]) / _mean(D[("p3c", k, p, rho, d)])) if D[("p3c", k, p, rho, d)]
                      else np.nan for p in PS]
                ax.plot(PS, ys, "o-", label=f"rho={rho}")
            ax.plot(PS, [p / 2 for p in PS], "k--", lw=1, label="p/2 (goal)")
            ax.axhline(1, color="grey", lw=0.5)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log", base=2)
            ax.set_title(f"k={k}, delta={d}", fontsize=9)
            if i == len(KS) - 1:
                ax.set_xlabel("p (clusters = DC groups)")
            if j == 0:
                ax.set_ylabel("DC / P3C total samples")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "ratio_vs_p.png"), dpi=110)
    plt.close(fig)


def main() -> None:
    D = _load("regime_k1024", "regime_k4096", "regime2_k1024", "regime3_k1024", "regime3_k4096", "regime4_k1024",
              "regime4_k4096", "regime5_k1024", "regime5_k4096", "regime5c2_k1024", "regime5c2_k4096", "rho0_k1024",
              "rho0b_k1024", "rho0b_k4096", "rho0c_k1024", "rho0c_k4096", "rho0d", "dc30_k1024", "rho0_dcn0_k1024", "dcc2_goal")
    L = (goal_table(D) + regime_tables(D) + c_table(D) + floor_table() + breakdown_table(D) + rho0_table(D)
         + dc_variant_table(D, "dc30", "n0=30", "DC with a larger first stage (n0 = 30)", (1024,))
         + dc_variant_table(D, "dc-c2", "c=2", "DC with KN's c = 2") + pcs_table() + budget_table())
    text = "\n".join(L) + "\n"
    with open(os.path.join(RES, "regime_tables.md"), "w") as f:
        f.write(text)
    readme = os.path.join(HERE, "README.md")          # refresh the copy between the markers
    with open(readme) as f:
        doc = f.read()
    start, end = "<!-- regime-tables:start -->\n", "<!-- regime-tables:end -->"
    if start in doc and end in doc:
        doc = doc[:doc.index(start) + len(start)] + text + doc[doc.index(end):]
        with open(readme, "w") as f:
            f.write(doc)
    plot(D)
    print("\n".join(L))


if __name__ == "__main__":
    main()
