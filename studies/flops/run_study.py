"""FLOPS CPU-scale study: variance ratios, accuracy vs forward passes, learned vs oracle, selection.

    nice -n 10 python studies/flops/run_study.py all        # ~30 min on one core
    nice -n 10 python studies/flops/run_study.py variance   # or: curves, select, plot
    python studies/flops/run_study.py all --quick           # a 2-minute check of the script

Writes studies/flops/results.json (or results_quick.json), summary.md and PNG plots.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import rands
from rands.applications.flops import (ForwardGradient, FlopsProblem, LayerwiseLR, SPSA, allocate,
                                      allocation_variance, make_allocator, train_run)
from rands.applications.flops.train import DEFAULTS, DEFAULT_LR

HERE = Path(__file__).resolve().parent
#: label -> (allocator name, parameters)
ALLOC_SPECS = {"uniform": ("uniform", {}), "loss": ("loss", {}), "neyman": ("neyman", {}),
               "neyman-m2": ("neyman", {"pilot": 1, "moment": "second"}), "gaussian": ("gaussian", {}),
               "bernoulli": ("bernoulli", {})}
ALLOCS = list(ALLOC_SPECS)
BATCH = 32


def _t95(n: int) -> float:
    from scipy.stats import t
    return float(t.ppf(0.975, n - 1)) if n > 1 else float("nan")


def _ci(xs) -> dict:
    xs = np.asarray(xs, dtype=float)
    m = float(xs.mean())
    h = _t95(xs.size) * float(xs.std(ddof=1)) / math.sqrt(xs.size) if xs.size > 1 else float("nan")
    return {"mean": m, "half_width": h, "n": int(xs.size)}


# ------------------------------------------------------------------ variance ratios
def _estimator(net, name, setting):
    s = {**DEFAULTS, **setting}
    if name == "lr":
        return LayerwiseLR(net, sigma=s["sigma"], antithetic=s["antithetic"], baseline=s["baseline"])
    return SPSA([p for p in net.parameters() if p.requires_grad], eps=s["eps"])


def measure_stage(net, opt_train, est_name, qbar, xb, yb, closure, reps, gen) -> dict:
    """MSE to the exact batch gradient of each allocator at equal forward passes, on one batch."""
    est = _estimator(net, est_name, {})
    targets = est.targets()
    loss = nn.functional.cross_entropy(net(xb), yb)
    exact = torch.autograd.grad(loss, targets)
    exact = torch.cat([g.reshape(-1) for g in exact]).detach()
    queries = qbar * BATCH
    out = {}
    allocs = {a: make_allocator(n, **p) for a, (n, p) in ALLOC_SPECS.items()}
    allocs["gaussian"] = opt_train.allocator if est_name == opt_train.estimator.name else allocs["gaussian"]
    allocs["bernoulli"].steps = 10 ** 6             # the code's late-training p
    # oracle: true per-point unit variances from many extra queries (diagnostic, not counted)
    with torch.no_grad():
        big = est.query(closure, torch.full((BATCH,), 300), gen)
        v_true = big.point_variances().numpy()
    units = queries // est.unit
    oracle_counts = allocate(np.sqrt(v_true), units, 1)

    class _Fixed(make_allocator("uniform").__class__):
        def spend(self, units_, b, query, clean, g):
            return query(oracle_counts)

    allocs["oracle"] = _Fixed()
    for name, alloc in allocs.items():
        errs, counts = [], []
        for _ in range(reps):
            a = copy.deepcopy(alloc)
            opt = ForwardGradient(targets, estimator=est, allocator=a, queries=queries, generator=gen)
            g, _, c = opt.estimate(closure, BATCH)
            errs.append(float((torch.cat([x.reshape(-1) for x in g]) - exact).pow(2).sum()))
            counts.append(c)
        out[name] = {"mse": float(np.mean(errs)), "mse_se": float(np.std(errs) / math.sqrt(reps)),
                     "mean_counts": np.mean(counts, 0).tolist()}
    out["closed_form"] = {"uniform": allocation_variance(v_true, allocate(np.ones(BATCH), units, 1)),
                          "oracle": allocation_variance(v_true, oracle_counts)}
    g_alloc = allocs["gaussian"]
    clean = closure(None).detach()
    n_clean_units = (queries - BATCH) // est.unit
    learned_counts = g_alloc.expected_counts(n_clean_units, clean)
    out["learned"] = {"params_beta_w_s_lam": g_alloc.params(),
                      "closed_form_at_mean": allocation_variance(v_true, learned_counts),
                      "corr_counts_vs_oracle": float(np.corrcoef(learned_counts, oracle_counts)[0, 1]),
                      "corr_sqrt_v_vs_loss": float(np.corrcoef(np.sqrt(v_true), clean.numpy())[0, 1])}
    out["v_true_cv"] = float(np.std(np.sqrt(v_true)) / np.mean(np.sqrt(v_true)))
    out["exact_grad_norm2"] = float(exact.pow(2).sum())
    return out


def run_variance(seeds, stages, reps, qbar=8, estimators=("lr", "spsa")) -> dict:
    res = {}
    for est_name in estimators:
        res[est_name] = {}
        for seed in seeds:
            per_stage = {}
            gen = torch.Generator().manual_seed(10_000 + seed)

            def cb(t, net, opt, xb, yb, closure):
                for label, steps in stages.items():
                    if t in steps:
                        per_stage.setdefault(label, []).append(
                            measure_stage(net, opt, est_name, qbar, xb, yb, closure, reps, gen))

            train_run({"estimator": est_name, "allocator": "gaussian", "queries_per_point": qbar}, seed,
                      steps=max(max(s) for s in stages.values()), eval_every=10 ** 9, callback=cb)
            res[est_name][str(seed)] = per_stage
            print(f"variance {est_name} seed {seed} done", flush=True)
    return res


def summarize_variance(res) -> dict:
    summ = {}
    for est_name, by_seed in res.items():
        summ[est_name] = {}
        stages = next(iter(by_seed.values())).keys()
        for st in stages:
            rows = [m for seed in by_seed.values() for m in seed[st]]
            d = {}
            for a in ALLOCS + ["oracle"]:
                ratios = [m["uniform"]["mse"] / m[a]["mse"] for m in rows]
                d[a] = {"ratio_uniform_over": _ci(ratios),
                        "pooled_ratio": sum(m["uniform"]["mse"] for m in rows) / sum(m[a]["mse"] for m in rows)}
            d["closed_form_ratio_uniform_over_oracle"] = _ci(
                [m["closed_form"]["uniform"] / m["closed_form"]["oracle"] for m in rows])
            d["learned_vs_oracle_mse_ratio"] = _ci([m["gaussian"]["mse"] / m["oracle"]["mse"] for m in rows])
            d["learned_closed_form_efficiency"] = _ci(
                [m["closed_form"]["oracle"] / m["learned"]["closed_form_at_mean"] for m in rows])
            d["learned_corr_counts_vs_oracle"] = _ci([m["learned"]["corr_counts_vs_oracle"] for m in rows])
            d["corr_sqrt_v_vs_loss"] = _ci([m["learned"]["corr_sqrt_v_vs_loss"] for m in rows])
            d["learned_params_beta_w_s_lam"] = np.mean([m["learned"]["params_beta_w_s_lam"] for m in rows], 0).tolist()
            d["oracle_mse_vs_closed_form"] = _ci([m["oracle"]["mse"] / m["closed_form"]["oracle"] for m in rows])
            summ[est_name][st] = d
    return summ


# ------------------------------------------------------------------ accuracy curves
def run_curves(configs, seeds, passes_budget, n_eval=10, allocs=None) -> list[dict]:
    out = []
    for cfg in configs:
        steps = passes_budget[cfg["model"]] // (BATCH * cfg["queries_per_point"])
        for a in (allocs or ALLOCS):
            name, params = ALLOC_SPECS[a]
            setting = {"estimator": cfg["estimator"], "allocator": name, "allocator_params": params,
                       "queries_per_point": cfg["queries_per_point"]}
            for key in ("lr", "trainable"):
                if cfg.get(key) is not None:
                    setting[key] = cfg[key]
            runs = []
            t0 = time.perf_counter()
            for seed in seeds:
                r = train_run(setting, seed, model=cfg["model"], steps=steps, eval_every=max(1, steps // n_eval))
                runs.append(r)
            out.append({**cfg, "allocator": a, "steps": steps, "seeds": list(seeds),
                        "passes": runs[0]["passes"], "acc": [r["acc"] for r in runs],
                        "seconds": time.perf_counter() - t0})
            print(f"curves {cfg} {a}: final {np.mean([r['final_acc'] for r in runs]):.3f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
    return out


def summarize_curves(curves, target) -> list[dict]:
    rows = []
    base = {}
    def key(c):
        return (c["model"], c["estimator"], c["queries_per_point"], c.get("lr"))
    for c in curves:
        if c["allocator"] == "uniform":
            base[key(c)] = c
    for c in curves:
        acc = np.asarray(c["acc"])
        passes = np.asarray(c["passes"])
        u = np.asarray(base[key(c)]["acc"])
        auc = acc.mean(1)
        hit = [int(passes[np.argmax(a >= target[c["model"]])]) if (a >= target[c["model"]]).any() else None
               for a in acc]
        rows.append({"model": c["model"], "estimator": c["estimator"], "q": c["queries_per_point"], "lr": c.get("lr"),
                     "allocator": c["allocator"], "final_acc": _ci(acc[:, -1]),
                     "final_minus_uniform": _ci(acc[:, -1] - u[:, -1]),
                     "mean_curve_acc_minus_uniform": _ci(auc - u.mean(1)),
                     "passes_to_target": hit, "target": target[c["model"]]})
    return rows


# ------------------------------------------------------------------ selection
def run_select(steps, seed, equal_budget, kn_params, lr=0.2) -> dict:
    settings = [{"estimator": "lr", "allocator": n, "allocator_params": p, "queries_per_point": 8, "lr": lr}
                for n, p in ALLOC_SPECS.values()]
    prob = FlopsProblem(settings, steps=steps)
    out = {"systems": [prob.label(i) for i in range(prob.k)], "steps": steps, "lr": lr}
    t0 = time.perf_counter()
    r = rands.select(prob, "equal", seed=seed, budget=equal_budget, crn=True)
    out["equal"] = {**r.to_dict(), "seconds": time.perf_counter() - t0}
    print(f"select equal: best {r.best_label}, means {np.round(r.means, 4)}", flush=True)
    if "kn" in rands.procedures.names():
        t0 = time.perf_counter()
        r = rands.select(prob, "kn", seed=seed, crn=True, **kn_params)
        out["kn"] = {**r.to_dict(), "seconds": time.perf_counter() - t0}
        print(f"select kn: best {r.best_label}, n {r.sample_sizes}", flush=True)
    out["procedures_available"] = rands.procedures.names()
    return out


def run_ocba(out: dict, steps, seed, budget, lr=0.2) -> dict:
    """Add an OCBA run (same problem, same seed) to a ``run_select`` record, if OCBA exists."""
    if "ocba" not in rands.procedures.names():
        return out
    settings = [{"estimator": "lr", "allocator": n, "allocator_params": p, "queries_per_point": 8, "lr": lr}
                for n, p in ALLOC_SPECS.values()]
    prob = FlopsProblem(settings, steps=steps)
    t0 = time.perf_counter()
    r = rands.select(prob, "ocba", seed=seed, crn=True, budget=budget, n0=4, increment=8)
    out["ocba"] = {**r.to_dict(), "seconds": time.perf_counter() - t0}
    print(f"select ocba: best {r.best_label}, n {r.sample_sizes}", flush=True)
    return out


# ------------------------------------------------------------------ plots and summary
def plot(results, prefix) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "variance_summary" in results:
        vs = results["variance_summary"]
        fig, axes = plt.subplots(1, len(vs), figsize=(6 * len(vs), 4), squeeze=False)
        for ax, (est, by_stage) in zip(axes[0], vs.items()):
            stages = list(by_stage)
            names = ALLOCS[1:] + ["oracle"]
            w = 0.8 / len(names)
            for j, a in enumerate(names):
                m = [by_stage[s][a]["ratio_uniform_over"]["mean"] for s in stages]
                h = [by_stage[s][a]["ratio_uniform_over"]["half_width"] for s in stages]
                ax.bar(np.arange(len(stages)) + j * w, m, w, yerr=h, label=a, capsize=2)
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set_xticks(np.arange(len(stages)) + 0.4 - w / 2)
            ax.set_xticklabels(stages)
            ax.set_ylabel("MSE(uniform) / MSE(allocator), equal passes")
            ax.set_title(f"{est}: gradient MSE ratio (MLP, q=8)")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(HERE / f"{prefix}variance_ratio.png", dpi=110)
        plt.close(fig)
    if "curves" in results:
        allc = results["curves"] + results.get("lrsweep", [])

        def ckey(c):
            return (c["model"], c["estimator"], c["queries_per_point"], c.get("lr") or DEFAULT_LR[c["estimator"]])
        cfgs = sorted({ckey(c) for c in allc})
        cols = 4
        rows_ = math.ceil(len(cfgs) / cols)
        fig, axes = plt.subplots(rows_, cols, figsize=(4.5 * cols, 3.8 * rows_), squeeze=False)
        for ax in axes.flat[len(cfgs):]:
            ax.axis("off")
        for ax, cfg in zip(axes.flat, cfgs):
            for c in allc:
                if ckey(c) != cfg:
                    continue
                acc = np.asarray(c["acc"])
                m = acc.mean(0)
                h = _t95(acc.shape[0]) * acc.std(0, ddof=1) / math.sqrt(acc.shape[0])
                x = np.asarray(c["passes"]) / 1000
                ax.plot(x, m, label=c["allocator"])
                ax.fill_between(x, m - h, m + h, alpha=0.15)
            ax.set_title(f"{cfg[0]} / {cfg[1]} / q={cfg[2]} / lr={cfg[3]}")
            ax.set_xlabel("forward passes (thousands)")
            ax.set_ylabel("test accuracy (95% CI over seeds)")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(HERE / f"{prefix}accuracy_curves.png", dpi=110)
        plt.close(fig)
    if "variance" in results:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for est, ax in zip(results["variance"], axes):
            for seed, stages in results["variance"][est].items():
                st = list(stages)[-1]
                m = stages[st][0]
                ax.scatter(m["oracle"]["mean_counts"], m["gaussian"]["mean_counts"], s=10, label=f"seed {seed}")
            top = max(max(ms[list(ms)[-1]][0]["oracle"]["mean_counts"]) for ms in results["variance"][est].values())
            ax.plot([0, top], [0, top], "k--", lw=0.8)
            ax.set_xlabel("oracle Neyman units per point")
            ax.set_ylabel("learned Gaussian allocator units (mean)")
            ax.set_title(f"{est}: learned vs oracle allocation ({st})")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(HERE / f"{prefix}learned_vs_oracle.png", dpi=110)
        plt.close(fig)


def write_summary(results, path) -> None:
    lines = []
    if "variance_summary" in results:
        lines.append("## Gradient MSE ratio MSE(uniform)/MSE(allocator) at equal forward passes (MLP, q=8, B=32)\n")
        for est, by_stage in results["variance_summary"].items():
            lines.append(f"### estimator {est}\n")
            lines.append("| stage | " + " | ".join(ALLOCS[1:] + ["oracle"]) + " | closed form uniform/oracle |"
                         " learned/oracle MSE | learned eff. (closed form) | corr(sqrt v, loss) | learned (beta, w, s, lam) |")
            lines.append("|" + "---|" * (len(ALLOCS) + 6))
            for st, d in by_stage.items():
                cells = [f"{d[a]['ratio_uniform_over']['mean']:.2f} ± {d[a]['ratio_uniform_over']['half_width']:.2f}"
                         for a in ALLOCS[1:] + ["oracle"]]
                cf = d["closed_form_ratio_uniform_over_oracle"]
                lo = d["learned_vs_oracle_mse_ratio"]
                ef = d["learned_closed_form_efficiency"]
                cv = d["corr_sqrt_v_vs_loss"]
                p = ", ".join(f"{x:.2f}" for x in d["learned_params_beta_w_s_lam"])
                lines.append(f"| {st} | " + " | ".join(cells) + f" | {cf['mean']:.2f} | {lo['mean']:.2f} ± {lo['half_width']:.2f}"
                             f" | {ef['mean']:.2f} | {cv['mean']:.2f} | {p} |")
            lines.append("")
    if "curves_summary" in results:
        lines.append("## Final test accuracy at equal forward passes (95% t-interval over seeds; CRN differences vs uniform)\n")
        lines.append("| model | est | q | lr | allocator | final acc | final - uniform | mean-curve acc - uniform | passes to target (per seed) |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        run_lr = {(c["model"], c["estimator"], c["queries_per_point"]): c.get("lr") for c in results.get("curves", [])}
        for r in results["curves_summary"] + results.get("lrsweep_summary", []):
            f, d, a = r["final_acc"], r["final_minus_uniform"], r["mean_curve_acc_minus_uniform"]
            hits = ",".join("-" if h is None else f"{h // 1000}k" for h in r["passes_to_target"])
            # summaries recorded before "lr" was stored: take the lr the curves ran with (the ViT ran at 0.02)
            lr = r.get("lr") or run_lr.get((r["model"], r["estimator"], r["q"])) or DEFAULT_LR[r["estimator"]]
            lines.append(f"| {r['model']} | {r['estimator']} | {r['q']} | {lr} | {r['allocator']} | {f['mean']:.3f} ± {f['half_width']:.3f}"
                         f" | {d['mean']:+.3f} ± {d['half_width']:.3f} | {a['mean']:+.3f} ± {a['half_width']:.3f} | {hits} (target {r['target']}) |")
        lines.append("")
    for key in ("select_lr0.05", "select"):
        if key not in results:
            continue
        s = results[key]
        lines.append(f"## rands.select over allocator settings (MLP, LR estimator, q=8, SGD lr={s.get('lr')}, "
                     f"{s['steps']} steps, CRN)\n")
        for proc in ("equal", "kn", "ocba"):
            if proc in s:
                r = s[proc]
                means = ", ".join(f"{lab}: {m:.4f} (n={n})" for lab, m, n in zip(s["systems"], r["means"], r["sample_sizes"]))
                lines.append(f"- **{proc}** {r['params']}: best = {r['best_label']}; total runs {r['total_samples']}; "
                             f"{r['seconds']:.0f} s; means {means}")
        lines.append(f"- procedures available: {s['procedures_available']}")
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["all", "variance", "curves", "select", "ocba", "lrsweep", "plot"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes to check the script")
    ap.add_argument("--select-lr", type=float, default=0.2, help="SGD lr of the selected settings (select part)")
    ap.add_argument("--kn-delta", type=float, default=0.02, help="KN indifference zone (select part)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    name = "results_quick.json" if args.quick else "results.json"
    prefix = "quick_" if args.quick else ""
    path = HERE / name
    results = json.loads(path.read_text()) if path.exists() else {}
    sweep_path = HERE / ("results_lrsweep_quick.json" if args.quick else "results_lrsweep.json")
    if args.quick:
        seeds, reps, stages = [0, 1], 6, {"early": [1], "mid": [20], "late": [40]}
        configs = [{"model": "mlp", "estimator": "lr", "queries_per_point": 8}]
        budget = {"mlp": 32 * 8 * 40, "vit": 32 * 8 * 20}
        sel = dict(steps=20, seed=1, equal_budget=10, kn_params={"alpha": 0.05, "delta": 0.05, "n0": 5})
    else:
        seeds, reps, stages = [0, 1, 2, 3, 4], 40, {"early": [1, 2], "mid": [100, 101], "late": [299, 300]}
        configs = [{"model": "mlp", "estimator": "lr", "queries_per_point": 8},
                   {"model": "mlp", "estimator": "lr", "queries_per_point": 16},
                   {"model": "mlp", "estimator": "spsa", "queries_per_point": 8},
                   {"model": "vit", "estimator": "lr", "queries_per_point": 8, "lr": 0.02, "trainable": "last"}]
        budget = {"mlp": 32 * 8 * 300, "vit": 32 * 8 * 200}
        sel = dict(steps=150, seed=2026, equal_budget=50, kn_params={"alpha": 0.05, "delta": 0.02, "n0": 10})
    target = {"mlp": 0.8, "vit": 0.7}
    t0 = time.perf_counter()
    if args.part in ("all", "variance"):
        results["variance"] = run_variance(seeds[:3], stages, reps)
        results["variance_summary"] = summarize_variance(results["variance"])
        path.write_text(json.dumps(results))
    if args.part in ("all", "curves"):
        results["curves"] = run_curves(configs, seeds, budget)
        results["curves_summary"] = summarize_curves(results["curves"], target)
        path.write_text(json.dumps(results))
    if args.part == "lrsweep":   # separate file: may run beside another part
        sweep_cfgs = [{"model": "mlp", "estimator": "lr", "queries_per_point": 8, "lr": lr} for lr in (0.1, 0.2)]
        sw = run_curves(sweep_cfgs, seeds, budget, allocs=["uniform", "loss", "neyman", "gaussian"])
        sweep_path.write_text(json.dumps({"lrsweep": sw, "lrsweep_summary": summarize_curves(sw, target),
                                          "seconds": time.perf_counter() - t0}))
        print(f"done in {time.perf_counter() - t0:.0f}s -> {sweep_path}")
        return 0
    sel_key = "select" if args.select_lr == 0.2 else f"select_lr{args.select_lr}"
    if not args.quick:
        sel["kn_params"]["delta"] = args.kn_delta
    if args.part in ("all", "select"):
        results[sel_key] = run_select(**sel, lr=args.select_lr)
        path.write_text(json.dumps(results))
    if args.part in ("all", "ocba"):
        results[sel_key] = run_ocba(results[sel_key], sel["steps"], sel["seed"], sel["equal_budget"] - 2,
                                    lr=args.select_lr)
        path.write_text(json.dumps(results))
    results.setdefault("meta", {})[args.part] = {"seconds": time.perf_counter() - t0, "torch": torch.__version__,
                                                 "command": " ".join(sys.argv)}
    path.write_text(json.dumps(results))
    if sweep_path.exists():
        results.update({k: v for k, v in json.loads(sweep_path.read_text()).items() if k.startswith("lrsweep")})
    plot(results, prefix)
    write_summary(results, HERE / f"{prefix}summary.md")
    print(f"done in {time.perf_counter() - t0:.0f}s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
