"""Aggregate run_grid.py results: tables (results.json, results.md) and plots (PNG).

    python studies/riskpo/aggregate.py
Intervals are Student-t 95% over training seeds (n seeds as recorded per method).
"""
from __future__ import annotations

import glob
import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rands.applications.riskpo.metrics import t_ci  # noqa: E402
from rands.applications.riskpo.train import METHODS  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUCKETS = ("easy", "medium", "hard", "all")
KS = (1, 4, 16, 64)
LABEL = {"grpo": "GRPO", "drgrpo": "Dr.GRPO", "riskpo": "RiskPO (bundle q)", "riskpo_tracked": "RiskPO (tracked q)",
         "riskpo_b1": "RiskPO B=1", "nsr": "GRPO+NSR", "rsgrpo": "RS-GRPO"}


def load():
    runs = defaultdict(list)
    for p in sorted(glob.glob(os.path.join(HERE, "runs", "*_s*.json"))):
        h = json.load(open(p))
        if "config" in h:  # placeholders mark runs skipped for time
            runs[h["config"]["method"]].append(h)
    return {m: runs[m] for m in METHODS if m in runs}


def stat(x):
    x = np.asarray(x, float)
    lo, hi = t_ci(x) if len(x) > 1 else (float("nan"), float("nan"))
    return {"mean": float(x.mean()), "ci95": [lo, hi], "n": int(len(x)), "values": x.tolist()}


def init_eval() -> dict | None:
    """Final-protocol evaluation of the shared SFT warm start (cached in runs/init_eval.json)."""
    path = os.path.join(HERE, "runs", "init_eval.json")
    if os.path.exists(path):
        return json.load(open(path))
    ck = os.path.join(HERE, "checkpoints", "init.pt")
    if not os.path.exists(ck):
        return None
    import torch
    from rands.applications.riskpo import policy as P, task as T
    from rands.applications.riskpo.train import evaluate
    torch.set_num_threads(1)
    _, ev = T.make_splits(seed=0, eval_per_bucket=100)
    res = evaluate(P.load(ck), ev, 128, seed=99_999)
    json.dump(res, open(path, "w"))
    return res


def main():
    runs = load()
    out = {"methods": {}, "directions": {}, "init": init_eval()}
    for m, hs in runs.items():
        d = {"seeds": sorted(h["config"]["seed"] for h in hs), "steps": hs[0]["config"]["steps"]}
        for b in BUCKETS:
            for key in [f"pass@{k}" for k in KS] + ["coverage", "distinct_correct", "distinct_per_solved", "entropy"]:
                d[f"{b}/{key}"] = stat([h["final"][b][key] for h in hs])
        steps = [c["step"] for c in hs[0]["curve"]]
        H = np.array([[c["all"]["entropy"] for c in h["curve"]] for h in hs])
        P1 = np.array([[c["all"]["pass@1"] for c in h["curve"]] for h in hs])
        d["curve_steps"] = steps
        d["curve_entropy_mean"] = H.mean(0).tolist()
        d["curve_pass1_mean"] = P1.mean(0).tolist()
        d["auc_entropy"] = stat(np.trapezoid(H, steps, axis=1) / steps[-1])
        d["auc_pass1"] = stat(np.trapezoid(P1, steps, axis=1) / steps[-1])
        d["train_entropy_last20"] = stat([np.mean([t["entropy"] for t in h["train"][-20:]]) for h in hs])
        d["wall_s"] = stat([h["wall_s"] for h in hs])
        out["methods"][m] = d
    M = out["methods"]

    def cmp(a, b, key):
        """Seed-paired comparison of metric ``key``: a - b over the seeds both methods ran."""
        if a not in M or b not in M:
            return None
        xa = dict(zip(M[a]["seeds"], M[a][key]["values"]))
        xb = dict(zip(M[b]["seeds"], M[b][key]["values"]))
        common = sorted(set(xa) & set(xb))
        if len(common) < 2:
            return None
        x, y = np.array([xa[s] for s in common]), np.array([xb[s] for s in common])
        diff = x - y
        lo, hi = t_ci(diff)
        verdict = "holds" if lo > 0 else ("reversed" if hi < 0 else "inconclusive")
        return {"a": a, "b": b, "metric": key, "seeds": common, "mean_a": float(x.mean()),
                "mean_b": float(y.mean()), "paired_diff": stat(diff), "verdict": verdict}

    D = out["directions"]
    D["entropy RiskPO > GRPO (final, eval)"] = cmp("riskpo", "grpo", "all/entropy")
    D["entropy RiskPO-tracked > GRPO (final, eval)"] = cmp("riskpo_tracked", "grpo", "all/entropy")
    D["entropy RiskPO > GRPO (AUC)"] = cmp("riskpo", "grpo", "auc_entropy")
    for k in (16, 64):
        D[f"hard pass@{k} RiskPO > GRPO"] = cmp("riskpo", "grpo", f"hard/pass@{k}")
        D[f"hard pass@{k} RiskPO-tracked > GRPO"] = cmp("riskpo_tracked", "grpo", f"hard/pass@{k}")
    D["hard coverage RiskPO > GRPO"] = cmp("riskpo", "grpo", "hard/coverage")
    D["pass@1 GRPO > RiskPO (final)"] = cmp("grpo", "riskpo", "all/pass@1")
    D["hard pass@64 RiskPO > NSR"] = cmp("riskpo", "nsr", "hard/pass@64")
    D["entropy RiskPO > NSR"] = cmp("riskpo", "nsr", "all/entropy")
    D["hard pass@64 RiskPO > RiskPO B=1"] = cmp("riskpo", "riskpo_b1", "hard/pass@64")
    D["diversity (distinct correct per solved) RiskPO > GRPO"] = cmp("riskpo", "grpo", "all/distinct_per_solved")
    D["hard pass@64 RS-GRPO > GRPO"] = cmp("rsgrpo", "grpo", "hard/pass@64")
    D["entropy RiskPO-tracked > RiskPO (bundle)"] = cmp("riskpo_tracked", "riskpo", "all/entropy")
    json.dump(out, open(os.path.join(HERE, "results.json"), "w"), indent=1)

    # ---- markdown tables
    lines = ["| method | seeds | entropy (final) | pass@1 all | easy p@1 | medium p@1 | hard p@1 | hard p@4 | "
             "hard p@16 | hard p@64 | hard coverage | distinct correct/solved |", "|" + "---|" * 12]

    def f(d, key):
        s = d[key]
        return f"{s['mean']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]" if s["n"] > 1 else f"{s['mean']:.3f}"

    if out["init"] is not None:
        I = out["init"]
        lines.append(f"| SFT init (step 0) | - | {I['all']['entropy']:.3f} | {I['all']['pass@1']:.3f} | "
                     f"{I['easy']['pass@1']:.3f} | {I['medium']['pass@1']:.3f} | {I['hard']['pass@1']:.3f} | "
                     f"{I['hard']['pass@4']:.3f} | {I['hard']['pass@16']:.3f} | {I['hard']['pass@64']:.3f} | "
                     f"{I['hard']['coverage']:.3f} | {I['all']['distinct_per_solved']:.3f} |")
    for m, d in M.items():
        lines.append(f"| {LABEL[m]} | {len(d['seeds'])} | {f(d, 'all/entropy')} | {f(d, 'all/pass@1')} | "
                     f"{f(d, 'easy/pass@1')} | {f(d, 'medium/pass@1')} | {f(d, 'hard/pass@1')} | "
                     f"{f(d, 'hard/pass@4')} | {f(d, 'hard/pass@16')} | {f(d, 'hard/pass@64')} | "
                     f"{f(d, 'hard/coverage')} | {f(d, 'all/distinct_per_solved')} |")
    lines += ["", "| method | " + " | ".join(f"{b} p@{k}" for b in ("easy", "medium") for k in KS) + " |",
              "|" + "---|" * 9]
    for m, d in M.items():
        lines.append(f"| {LABEL[m]} | " + " | ".join(f(d, f"{b}/pass@{k}") for b in ("easy", "medium") for k in KS)
                     + " |")
    lines += ["", "Pre-registered directions (paired by seed; holds / reversed = 95% t-interval of the difference above / below 0):", ""]
    for name, c in D.items():
        if c is None:
            continue
        pdiff = c["paired_diff"]
        lines.append(f"- {name} (seeds {c['seeds']}): {c['mean_a']:.4f} vs {c['mean_b']:.4f}; paired diff "
                     f"{pdiff['mean']:+.4f} [{pdiff['ci95'][0]:+.4f}, {pdiff['ci95'][1]:+.4f}] -> {c['verdict']}")
    open(os.path.join(HERE, "results.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))

    # ---- plots
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for m, hs in runs.items():
        steps = [c["step"] for c in hs[0]["curve"]]
        for j, (key, title) in enumerate([("entropy", "token entropy (eval prompts, T=1)"),
                                          ("pass@1", "pass@1 (eval curve subset)")]):
            Y = np.array([[c["all"][key] for c in h["curve"]] for h in hs])
            mu = Y.mean(0)
            ax[j].plot(steps, mu, label=f"{LABEL[m]} (n={len(hs)})")
            if len(hs) > 1:
                se = Y.std(0, ddof=1) / np.sqrt(len(hs))
                ax[j].fill_between(steps, mu - se, mu + se, alpha=0.15)
            ax[j].set_title(title + ", mean +- s.e. over seeds")
            ax[j].set_xlabel("step")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "entropy_pass1_curves.png"), dpi=120)

    fig, axs = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    width = 0.8 / max(1, len(M))
    for bi, b in enumerate(("easy", "medium", "hard")):
        for mi, (m, d) in enumerate(M.items()):
            mu = [d[f"{b}/pass@{k}"]["mean"] for k in KS]
            ci = np.array([d[f"{b}/pass@{k}"]["ci95"] for k in KS])
            err = np.abs(ci.T - mu) if d[f"{b}/pass@1"]["n"] > 1 else None
            axs[bi].bar(np.arange(4) + mi * width, mu, width, yerr=err, label=LABEL[m], capsize=2)
        axs[bi].set_xticks(np.arange(4) + 0.4 - width / 2, [f"pass@{k}" for k in KS])
        axs[bi].set_title(f"{b} bucket (final, n=128 samples)")
    axs[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "final_passk_by_bucket.png"), dpi=120)

    sel_path = os.path.join(HERE, "selection.json")
    if os.path.exists(sel_path):
        s = json.load(open(sel_path))
        rows = s["results"]
        mu = np.array(s["true_pass1"])
        lines = ["", f"Checkpoint selection ({s['k']} checkpoints of training seed {s['args']['seed_run']}, "
                 f"{rows[0]['macroreps']} macroreplications, delta = {s['args']['delta']}, alpha = {s['args']['alpha']}; "
                 f"best exact pass@1 {mu.max():.4f}; {int((mu > mu.max() - s['args']['delta']).sum())} checkpoints "
                 f"within delta):", "",
                 "| procedure | PCS [95% Wilson] | PGS (delta) | P(within 0.005) | mean samples | regret | "
                 "selection bias (reported - true) +- se |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            near = float(np.mean(mu[r["selected"]] > mu.max() - 0.005))
            lines.append(f"| {r['procedure']} | {r['pcs']:.2f} [{r['pcs_ci'][0]:.2f}, {r['pcs_ci'][1]:.2f}] | "
                         f"{r['pgs']:.2f} | {near:.2f} | {r['mean_samples']:.0f} | {r['regret']:.4f} | "
                         f"{r['selection_bias']:+.4f} +- {r['selection_bias_se']:.4f} |")
        open(os.path.join(HERE, "results.md"), "a").write("\n".join(lines) + "\n")
        print("\n".join(lines))
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
        names = [r["procedure"] for r in rows]
        ax[0].bar(names, [r["pgs"] for r in rows], yerr=np.abs(np.array([r["pgs_ci"] for r in rows]).T
                                                          - [r["pgs"] for r in rows]), capsize=3, label="PGS")
        ax[0].plot(names, [r["pcs"] for r in rows], "ko", label="PCS")
        ax[0].set_ylim(0, 1.05)
        ax[0].legend()
        ax[0].tick_params(axis="x", rotation=20, labelsize=7)
        ax[1].bar(names, [r["selection_bias"] for r in rows],
                  yerr=[1.96 * (r["selection_bias_se"] or 0) for r in rows], capsize=3)
        ax[1].set_title("selection bias: reported mean - true pass@1")
        ax[1].tick_params(axis="x", rotation=20, labelsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(HERE, "selection.png"), dpi=120)


if __name__ == "__main__":
    main()
