"""RLR study at CPU scale: a DDPM on scikit-learn digits, a frozen-classifier reward.

Stages (run in order; each writes JSON next to this file, or under --out):
  assets  train the DDPM (MLP eps-model) and the digit classifier -> assets/*.npz, assets.json
  A       gradient quality at fixed theta: bias, tr Cov, MSE, MSE x cost, cosine vs full backprop,
          M replications under CRN (every estimator sees the same x_T and step noises) -> expA.json
  B       optimisation: reward vs samples / network calls / wall time, collapse and diversity,
          several seeds -> expB.json, final fine-tunes -> assets/finetunes/*.npz
  select  fine-tunes as rands systems, chosen by rands.select under CRN -> select.json
  plots   expA.png, expB.png
``--smoke`` runs every stage with tiny sizes into a temporary folder (CI).
"""
from __future__ import annotations

import argparse
import json
import math
import time
import zlib
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from rands.applications.rlr import (DDIMSchedule, NoiseBank, estimate_gradient, linear_alphas_cumprod,  # noqa
                                    make_estimator, profile_step_memory)
from rands.applications.rlr.estimator import replicated_gradients  # noqa: E402
from rands.applications.rlr.models import (MLPClassifier, MLPDenoiser, digits_data, load_npz, save_npz,  # noqa
                                           train_classifier, train_ddpm)
from rands.applications.rlr.rewards import ClassifierHit, ClassifierLogProb, Compressibility  # noqa: E402
from rands.applications.rlr.train import evaluate, finetune  # noqa: E402

HERE = Path(__file__).resolve().parent
TARGET = 3

# name -> (make_estimator name, kwargs)
EST_A = {
    "full_bp": ("full_bp", {}),
    "draft_1": ("draft_1", {}),
    "draft_2": ("draft_2", {}),
    "draft_5": ("draft_5", {}),
    "alignprop_rand": ("alignprop_rand", {"k_max": 3}),
    "ddpo": ("ddpo", {}),
    "ddpo_ppo": ("ddpo_ppo", {}),
    "hybrid_bp_2": ("hybrid_bp_2", {}),
    "rlr_h1": ("rlr", {"h": 1}),
    "rlr_h2": ("rlr", {"h": 2}),
    "rlr_h4": ("rlr", {"h": 4}),
    "rlr_h2_softmax": ("rlr", {"h": 2, "j": "softmax"}),
    "rlr_h2_band": ("rlr", {"h": 2, "band": "upper"}),  # j in the upper (noisier) half of the chain
    "rlr_zo_h2": ("rlr", {"h": 2, "fill": "zo", "zo_sigma": 0.01}),
    "rlr_code": ("rlr_code", {"n": 2}),
}
EST_B = ["full_bp", "draft_1", "alignprop_rand", "ddpo", "ddpo_ppo", "rlr_h2"]


def make_est(name: str, c: dict):
    base, kw = EST_A[name]
    kw = dict(kw)
    if kw.get("band") == "upper":
        kw["band"] = (c["T"] // 2 + 1, c["T"] - 1)
    e = make_estimator(base, **kw)
    e.name = name
    return e


def cfg(smoke: bool) -> dict:
    if smoke:
        return dict(ddpm_steps=300, clf_steps=300, hidden=64, train_steps=100, T=6, eta=1.0, reps=20, batch=4,
                    truth=400, truth_batch=200, warmup=5, b_updates=6, b_batch=4, b_seeds=1, b_eval=32,
                    b_every=3, lr=3e-4, sel_budget=60, sel_truth=200, ppo_epochs=2, sel_equal_only=True,
                    sel_delta=0.2, b_methods=["full_bp", "rlr_h2", "ddpo_ppo"])
    return dict(ddpm_steps=6000, clf_steps=1500, hidden=128, train_steps=200, T=10, eta=1.0, reps=2000, batch=8,
                truth=20000, truth_batch=500, warmup=50, b_updates=100, b_batch=16, b_seeds=3, b_eval=128,
                b_every=10, lr=3e-4, sel_budget=2400, sel_truth=4000, ppo_epochs=2, sel_delta=0.2)


def schedule(c) -> DDIMSchedule:
    return DDIMSchedule.from_alphas(linear_alphas_cumprod(c["train_steps"]), c["T"], c["eta"])


def load_assets(out: Path):
    model = load_npz(out / "assets" / "ddpm.npz")
    clf = load_npz(out / "assets" / "classifier.npz")
    return model, clf


# ---------------------------------------------------------------- assets
ASSET_KEYS = ("ddpm_steps", "clf_steps", "hidden", "train_steps", "T", "eta")  # what the assets depend on


def stage_assets(c, out: Path) -> None:
    (out / "assets").mkdir(parents=True, exist_ok=True)
    X, y = digits_data()
    t0 = time.time()
    clf = MLPClassifier()
    acc = train_classifier(clf, X, y, steps=c["clf_steps"])
    model = MLPDenoiser(dim=64, hidden=c["hidden"], temb=32, depth=2)
    curve = train_ddpm(model, X, linear_alphas_cumprod(c["train_steps"]), steps=c["ddpm_steps"], log_every=1000)
    save_npz(model, out / "assets" / "ddpm.npz")
    save_npz(clf, out / "assets" / "classifier.npz")
    sch = schedule(c)
    bank = NoiseBank.draw(c["T"], 500, (64,), torch.Generator().manual_seed(0))
    ev = evaluate(model, sch, bank, {"logp": ClassifierLogProb(clf, TARGET), "hit": ClassifierHit(clf, TARGET)},
                  clf)
    ev.pop("_features")
    info = {"classifier": acc, "ddpm_loss_last": curve[-1], "ddpm_params": sum(p.numel() for p in model.parameters()),
            "base_samples": ev, "seconds": time.time() - t0, "config": {k: c[k] for k in ASSET_KEYS},
            "memory_per_step_bytes": profile_step_memory(model, sch, (64,))}
    (out / "assets.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))


# ---------------------------------------------------------------- experiment A
def save_raw(out: Path, tag: str, truth, truth_trvar, stats) -> None:
    """Sufficient statistics of a (partial) run of experiment A: NPZ vectors + JSON scalars."""
    arrays = {"truth": truth}
    scal = {"truth_trvar": truth_trvar, "estimators": {}}
    for n, s in stats.items():
        arrays[f"{n}:sum"] = s["sum"]
        arrays[f"{n}:sumsq"] = s["sumsq"]
        scal["estimators"][n] = {k: s[k] for k in ("sqerr", "cos", "units", "peak", "secs", "M")}
    np.savez(out / f"rawA{tag}.npz", **arrays)
    (out / f"rawA{tag}.json").write_text(json.dumps(scal))


def finalize_A(s: dict, truth, truth_trvar: float, cov) -> dict:
    M = s["M"]
    tn = np.linalg.norm(truth)
    mean = s["sum"] / M
    var = (s["sumsq"] / M - mean ** 2) * M / (M - 1)
    trvar = float(var.sum())
    bias = mean - truth
    units = s["units"] / M
    mse = s["sqerr"] / M
    return {
        "replications": int(M),
        "coverage": cov.describe(),
        "rel_bias": float(np.linalg.norm(bias) / tn),
        # Monte Carlo floor of |bias| for an unbiased estimator: sqrt(E|noise|^2)
        "rel_bias_noise_floor": float(math.sqrt(trvar / M + truth_trvar) / tn),
        "bias_sq": float(bias @ bias),
        "tr_cov": trvar,
        "mse": mse,
        "rel_mse": mse / tn ** 2,
        "cost_units": units,
        "mse_x_cost": mse * units,
        "tr_cov_x_cost": trvar * units,
        "cosine": s["cos"] / M,
        "cosine_of_mean": float(mean @ truth / (np.linalg.norm(mean) * tn)),
        # scale-free signal-to-noise: |E g|^2 / tr Cov (fair to mean-reduced / normalised DDPO)
        "snr": float(mean @ mean / trvar) if trvar > 0 else float("inf"),
        "snr_per_cost": float(mean @ mean / trvar / units) if trvar > 0 else float("inf"),
        "peak_graph_steps": int(s["peak"]),
        "seconds_per_estimate": s["secs"] / M,
    }


def stage_A(c, out: Path, only: list[str] | None = None, tag: str = "", shard: int | None = None,
            nshards: int = 1) -> None:
    model, clf = load_assets(out)
    for p in model.parameters():
        p.requires_grad_(True)
    sch = schedule(c)
    reward = ClassifierLogProb(clf, TARGET)
    g = torch.Generator().manual_seed(2026)
    t0 = time.time()
    truth_sum = None
    sq = None
    nb_truth = c["truth"] // c["truth_batch"]
    for _ in range(nb_truth):
        bank = NoiseBank.draw(c["T"], c["truth_batch"], (64,), g)
        gr, _ = estimate_gradient(model, sch, bank, reward, make_estimator("full_bp"), rng=np.random.default_rng(0))
        gr = gr.double().numpy()
        truth_sum = gr if truth_sum is None else truth_sum + gr
        sq = gr ** 2 if sq is None else sq + gr ** 2
    truth = truth_sum / nb_truth
    # tr Cov of the truth estimate (batch means of truth_batch chains, averaged over nb_truth batches)
    truth_trvar = float(((sq / nb_truth - truth ** 2) * nb_truth / (nb_truth - 1)).sum() / nb_truth)
    print(f"truth: |g| = {np.linalg.norm(truth):.4g}, tr Var(truth) = {truth_trvar:.3g}, {time.time() - t0:.1f}s",
          flush=True)
    names = [n for n in EST_A if only is None or n in only]
    ests = {n: make_est(n, c) for n in names}
    for n, e in ests.items():
        e.name = n
    P = truth.size
    stats = {n: {"sum": np.zeros(P), "sumsq": np.zeros(P), "sqerr": 0.0, "cos": 0.0, "units": 0.0, "peak": 0,
                 "secs": 0.0, "M": 0} for n in names}
    # warm-up of adaptive j (running per-step norms), not counted; the vmapped replications below do not
    # update the norms, so j then follows the frozen softmax(warm-up norms) (fixed theta)
    for n, e in ests.items():
        if EST_A[n][1].get("j") == "softmax":
            for _ in range(c["warmup"]):
                bank = NoiseBank.draw(c["T"], c["batch"], (64,), g)
                estimate_gradient(model, sch, bank, reward, e, rng=np.random.default_rng(1))
    zo_gen = torch.Generator().manual_seed(77)
    if shard is not None:  # independent replication stream per shard (seeds never added)
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([2026, 1, shard]).generate_state(1)[0]))
        zo_gen = torch.Generator().manual_seed(int(np.random.SeedSequence([77, 1, shard]).generate_state(1)[0]))
    # zlib.crc32: a stable per-name seed (hash() of a str is salted per process, so not reproducible)
    rngs = {n: np.random.default_rng([zlib.crc32(n.encode()), 0 if shard is None else shard + 1]) for n in names}
    tn = np.linalg.norm(truth)
    t0 = time.time()
    n_reps = c["reps"] // nshards
    G = c.get("chunk", 100)
    done = 0
    while done < n_reps:
        nG = min(G, n_reps - done)
        # CRN: one noise draw per replication, shared by every estimator
        xT = torch.randn((nG, c["batch"], 64), generator=g)
        eps = torch.randn((c["T"], nG, c["batch"], 64), generator=g)
        for n, e in ests.items():
            s = stats[n]
            t1 = time.perf_counter()
            if "zo" in n:  # per-chain parameter perturbations: one replication at a time
                rows_g, units = [], 0.0
                for r in range(nG):
                    gr, info = estimate_gradient(model, sch, NoiseBank(xT[r], eps[:, r]), reward, e, rng=rngs[n],
                                                 generator=zo_gen)
                    rows_g.append(gr)
                    units += info["cost"]["units"]
                    s["peak"] = max(s["peak"], info["cost"]["peak_depth"])
                V = torch.stack(rows_g).double().numpy()
            else:  # group replications by their sampled strategy map, vmap over each group
                maps = [tuple(e.plan.sample(rngs[n], c["T"])) for _ in range(nG)]
                V = np.empty((nG, P))
                units = 0.0
                for key in set(maps):
                    idx = [i for i, m_ in enumerate(maps) if m_ == key]
                    Vg, cost = replicated_gradients(model, sch, reward, e, xT[idx], eps[:, idx], list(key))
                    V[idx] = Vg.double().numpy()
                    units += cost["units"] * len(idx)
                    s["peak"] = max(s["peak"], cost["peak_depth"])
            s["secs"] += time.perf_counter() - t1
            s["sum"] += V.sum(0)
            s["sumsq"] += (V * V).sum(0)
            D_ = V - truth
            s["sqerr"] += float((D_ * D_).sum())
            nv = np.linalg.norm(V, axis=1)
            s["cos"] += float(np.where(nv > 0, V @ truth / np.maximum(nv, 1e-300) / tn, 0.0).sum())
            s["units"] += units
            s["M"] += nG
        done += nG
        save_raw(out, tag, truth, truth_trvar, stats)
        print(f"A{tag}: {done}/{n_reps} reps, {time.time() - t0:.0f}s", flush=True)
    rows = {n: finalize_A(stats[n], truth, truth_trvar, ests[n].coverage(sch)) for n in names}
    M = n_reps
    res = {"config": c, "batch_per_replication": c["batch"], "replications": M, "truth_norm": float(tn),
           "truth_chains": c["truth"], "truth_tr_var": truth_trvar, "params": int(P), "estimators": rows,
           "sigma": sch.sigma.tolist(), "note": "tr_cov and mse are per replication (a batch of `batch` chains); "
           "cost_units = forward calls + 3 x graph step evaluations per chain"}
    (out / f"expA{tag}.json").write_text(json.dumps(res, indent=1))
    print_A(rows)


def print_A(rows: dict) -> None:
    hdr = f"{'estimator':16s} {'relbias':>8s} {'floor':>7s} {'trCov':>10s} {'MSE':>10s} {'units':>6s} " \
          f"{'MSExcost':>10s} {'cos':>6s}  coverage"
    print(hdr)
    for n, r_ in rows.items():
        print(f"{n:16s} {r_['rel_bias']:8.3f} {r_['rel_bias_noise_floor']:7.3f} {r_['tr_cov']:10.4g} "
              f"{r_['mse']:10.4g} {r_['cost_units']:6.1f} {r_['mse_x_cost']:10.4g} {r_['cosine']:6.3f}  "
              f"{r_['coverage']}")


# ---------------------------------------------------------------- experiment B
def stage_merge(c, out: Path) -> None:
    """Merge shards expA_*.json -> expA.json and expB_*.json -> expB.json (each shard's M is kept)."""
    raws = sorted(out.glob("rawA_*.json"))
    if raws:
        sch = schedule(c)
        acc: dict = {}
        truth = None
        for f in raws:
            scal = json.loads(f.read_text())
            z = np.load(f.with_suffix(".npz"))
            truth = z["truth"] if truth is None else truth
            if not np.array_equal(truth, z["truth"]):
                raise RuntimeError(f"{f} was computed against a different truth")
            tvar = scal["truth_trvar"]
            for n, sc in scal["estimators"].items():
                a = acc.setdefault(n, {"sum": 0.0, "sumsq": 0.0, "sqerr": 0.0, "cos": 0.0, "units": 0.0, "peak": 0,
                                       "secs": 0.0, "M": 0})
                a["sum"] = a["sum"] + z[f"{n}:sum"]
                a["sumsq"] = a["sumsq"] + z[f"{n}:sumsq"]
                for k in ("sqerr", "cos", "units", "secs", "M"):
                    a[k] += sc[k]
                a["peak"] = max(a["peak"], sc["peak"])
        rows = {n: finalize_A(a, truth, tvar, make_est(n, c).coverage(sch)) for n, a in acc.items()}
        for f in sorted(out.glob("expA_*.json")):  # complete single-process runs (e.g. the ZO estimator)
            d = json.loads(f.read_text())
            for n, r in d["estimators"].items():
                r.setdefault("replications", d["replications"])
                rows.setdefault(n, r)
        res = {"config": c, "batch_per_replication": c["batch"], "truth_norm": float(np.linalg.norm(truth)),
               "truth_chains": c["truth"], "truth_tr_var": tvar, "params": int(truth.size), "estimators": rows,
               "sigma": sch.sigma.tolist(), "shards": [f.name for f in raws],
               "note": "tr_cov and mse are per replication (a batch of `batch` chains, all estimators on the same "
                       "noise within a shard: CRN); cost_units = forward calls + 3 x graph step evaluations per "
                       "chain; rlr_zo_h2 was run separately (fewer replications, see its `replications`)"}
        (out / "expA.json").write_text(json.dumps(res, indent=1))
        print_A(rows)
    shards = [] if raws else sorted(out.glob("expA_*.json"))
    names_seen = [n for f in shards for n in json.loads(f.read_text())["estimators"]]
    if len(names_seen) != len(set(names_seen)):
        print("merge: shards of the same estimator need their sufficient statistics (rawA_*.npz/json); "
              "expA.json left unchanged")
        shards = []
    if shards:
        res = None
        for f in shards:
            d = json.loads(f.read_text())
            for r in d["estimators"].values():
                r["replications"] = d["replications"]
            if res is None:
                res = d
            else:
                res["estimators"].update(d["estimators"])
        res["replications"] = "per estimator (see estimators.*.replications)"
        (out / "expA.json").write_text(json.dumps(res, indent=1))
        print_A(res["estimators"])
    shards = sorted(out.glob("expB_*.json"))
    if shards:
        runs, res = {}, None
        for f in shards:
            d = json.loads(f.read_text())
            runs.update(d["runs"])
            res = res or d
        res["runs"] = runs
        res["summary"] = summarize_B(runs)
        (out / "expB.json").write_text(json.dumps(res, indent=1))
        print_B(res["summary"])


def stage_B(c, out: Path, methods: list[str] | None = None, tag: str = "", jobs=None) -> None:
    base, clf = load_assets(out)
    sch = schedule(c)
    reward = ClassifierLogProb(clf, TARGET)
    evr = {"logp": reward, "hit": ClassifierHit(clf, TARGET), "compress": Compressibility()}
    eval_bank = NoiseBank.draw(c["T"], c["b_eval"], (64,), torch.Generator().manual_seed(999))
    base_ev = evaluate(base, sch, eval_bank, evr, clf)
    base_feats = base_ev.pop("_features")
    (out / "assets" / "finetunes").mkdir(parents=True, exist_ok=True)
    runs = {}
    methods = methods or c.get("b_methods", EST_B)
    if jobs is None:
        jobs = [(m, "logp") for m in methods] + [("ddpo", "hit"), ("rlr_h2_nofo", "hit")]
    for m, rname in jobs:
        for seed in range(c["b_seeds"]):
            model = load_npz(out / "assets" / "ddpm.npz")
            if m == "rlr_h2_nofo":
                est = make_estimator("rlr", h=2, fo=0)
            else:
                est = make_est(m, c)
            rew = reward if rname == "logp" else evr["hit"]
            t0 = time.time()
            hist = finetune(model, sch, rew, est, updates=c["b_updates"], batch=c["b_batch"], lr=c["lr"],
                            seed=seed, ppo_epochs=c["ppo_epochs"] if m == "ddpo_ppo" else 1, eval_noise=eval_bank,
                            eval_rewards=evr, eval_every=c["b_every"], classifier=clf, base_features=base_feats)
            key = f"{m}|{rname}|{seed}"
            runs[key] = hist
            save_npz(model, out / "assets" / "finetunes" / f"{m}_{rname}_s{seed}.npz")
            lp = hist["eval_logp"]
            (out / f"expB{tag}.json").write_text(json.dumps({"config": c, "base_eval": base_ev, "runs": runs,
                                                              "partial": True}))
            print(f"B {key}: logp {lp[0]:.3f} -> max {max(lp):.3f} -> final {lp[-1]:.3f}; diversity "
                  f"{hist['eval_diversity_l2'][0]:.3f} -> {hist['eval_diversity_l2'][-1]:.3f}; "
                  f"{time.time() - t0:.1f}s", flush=True)
    res = {"config": c, "base_eval": base_ev, "runs": runs, "summary": summarize_B(runs),
           "collapse_definition": "diversity_ratio = final / initial mean pairwise L2 of the fixed-noise eval "
                                  "samples; drop_from_peak = peak - final eval reward; out_of_range = fraction "
                                  "of pixels with |x| > 1.2 (data lie in [-1, 1])"}
    (out / f"expB{tag}.json").write_text(json.dumps(res, indent=1))
    print_B(res["summary"])


def summarize_B(runs: dict) -> dict:
    summary = {}
    for key, h in runs.items():
        m, rname, seed = key.split("|")
        target = h["eval_logp"] if rname == "logp" else h["eval_hit"]
        summary.setdefault(f"{m}|{rname}", []).append({
            "final": target[-1], "peak": max(target), "drop_from_peak": max(target) - target[-1],
            "final_hit": h["eval_hit"][-1], "diversity_ratio": h["eval_diversity_l2"][-1] / h["eval_diversity_l2"][0],
            "out_of_range": h.get("eval_out_of_range", [float("nan")])[-1],
            "class_entropy": h["eval_class_entropy"][-1],
            "feature_spread_ratio": h["eval_feature_spread"][-1] / h["eval_feature_spread"][0],
            "frechet_to_base": h["eval_frechet_to_base"][-1], "wall": h["ledger"]["wall"],
            "network_calls": h["ledger"]["network_calls"], "samples": h["ledger"]["samples"]})
    agg = {}
    for k, lst in summary.items():
        agg[k] = {f: {"mean": float(np.mean([d[f] for d in lst])), "sd": float(np.std([d[f] for d in lst], ddof=1))
                      if len(lst) > 1 else 0.0, "n": len(lst)} for f in lst[0]}
    return agg


def print_B(agg: dict) -> None:
    print(f"{'method|reward':24s} {'final':>14s} {'drop':>7s} {'hit':>6s} {'div':>6s} {'oor':>6s} {'H':>5s} "
          f"{'FD':>8s} {'calls':>8s} {'wall':>6s}")
    for k, a in agg.items():
        print(f"{k:24s} {a['final']['mean']:7.3f}+-{a['final']['sd']:5.3f} {a['drop_from_peak']['mean']:7.3f} "
              f"{a['final_hit']['mean']:6.3f} {a['diversity_ratio']['mean']:6.3f} {a['out_of_range']['mean']:6.3f} "
              f"{a['class_entropy']['mean']:5.2f} {a['frechet_to_base']['mean']:8.2f} "
              f"{a['network_calls']['mean']:8.0f} {a['wall']['mean']:6.1f}")


# ---------------------------------------------------------------- selection
def stage_select(c, out: Path) -> None:
    import rands
    from rands.applications.rlr.problem import FineTuneProblem
    ft = out / "assets" / "finetunes"
    methods = [m for m in EST_B if (ft / f"{m}_logp_s0.npz").exists()]
    paths = [str(out / "assets" / "ddpm.npz")] + [str(ft / f"{m}_logp_s0.npz") for m in methods]
    labels = ["base"] + methods
    spec = {"kind": "classifier_logprob", "classifier": str(out / "assets" / "classifier.npz"), "target": TARGET}
    prob = FineTuneProblem(paths, spec, {"train_steps": c["train_steps"], "num_steps": c["T"], "eta": c["eta"]},
                           labels=labels)
    # reference means from a large CRN sample (independent seed)
    st = rands.Streams(424242, crn=True)
    n = c["sel_truth"]
    ref = np.array([prob.simulate(np.full(n, i), np.arange(n), st).mean() for i in range(prob.k)])
    ref_sd = np.array([prob.simulate(np.full(n, i), np.arange(n), st).std() for i in range(prob.k)])
    out_rows = {"systems": labels, "reference_means": ref.tolist(), "reference_sd": ref_sd.tolist(),
                "reference_n": n, "procedures": {}}
    print("reference means:", dict(zip(labels, np.round(ref, 3))))
    tries = {"equal": {"budget": c["sel_budget"], "crn": True}}
    avail = rands.procedures.names()
    for name in ([] if c.get("sel_equal_only") else avail):
        if name in tries:
            continue
        cls = rands.procedures.procedure_class(name)
        params = cls._param_names()
        kw = {}
        if getattr(cls, "kind", "") == "fixed_budget" and "budget" in params:
            kw["budget"] = c["sel_budget"]
        elif name in ("kn", "kt"):  # fixed precision with CRN; IZ delta in reward units (log-prob)
            kw["delta"] = c["sel_delta"]
        else:
            continue  # Rinott/GSP assume independence and need far more samples at this delta
        if "crn" in params and getattr(cls, "supports_crn", False):
            kw["crn"] = True
        tries[name] = kw
    for name, kw in tries.items():
        try:
            t0 = time.time()
            res = rands.select(prob, name, seed=7, **kw)
            out_rows["procedures"][name] = {"params": kw, "best": res.best, "best_label": res.best_label,
                                            "total_samples": int(res.total_samples),
                                            "means": np.asarray(res.means).tolist(),
                                            "correct": bool(res.best == int(np.argmax(ref))),
                                            "good_within_delta": bool(ref[res.best] >= ref.max() - c["sel_delta"]),
                                            "seconds": time.time() - t0}
            print(f"select {name}: best {res.best_label} with {res.total_samples} samples "
                  f"(reference best {labels[int(np.argmax(ref))]})", flush=True)
        except Exception as exc:  # noqa: BLE001 - record and go on: other procedures are work in progress
            out_rows["procedures"][name] = {"params": kw, "error": f"{type(exc).__name__}: {exc}"}
            print(f"select {name}: {type(exc).__name__}: {exc}", flush=True)
    out_rows["available_procedures"] = avail
    (out / "select.json").write_text(json.dumps(out_rows, indent=1))


# ---------------------------------------------------------------- plots
def stage_plots(c, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if (out / "expA.json").exists():
        A = json.loads((out / "expA.json").read_text())["estimators"]
        names = list(A)
        fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
        x = np.arange(len(names))
        ax[0].bar(x, [A[n]["rel_bias"] for n in names], color="C0")
        ax[0].plot(x, [A[n]["rel_bias_noise_floor"] for n in names], "k_", ms=14, label="MC noise floor")
        ax[0].set_yscale("log")
        ax[0].set_ylabel("relative bias |E g - g*| / |g*| (log)")
        ax[0].legend()
        ax[1].bar(x, [A[n]["tr_cov_x_cost"] for n in names], color="C1")
        ax[1].set_yscale("log")
        ax[1].set_ylabel("tr Cov x cost (equal-cost variance)")
        ax[2].bar(x, [A[n]["mse_x_cost"] for n in names], color="C2")
        ax[2].set_yscale("log")
        ax[2].set_ylabel("MSE x cost")
        for a in ax:
            a.set_xticks(x)
            a.set_xticklabels(names, rotation=70, fontsize=8)
        fig.suptitle("Experiment A: gradient quality at the base model (CRN)")
        fig.tight_layout()
        fig.savefig(out / "expA.png", dpi=110)
        plt.close(fig)
    if (out / "expB.json").exists():
        B = json.loads((out / "expB.json").read_text())["runs"]
        fig, ax = plt.subplots(2, 3, figsize=(16, 8))
        methods = sorted({k.split("|")[0] + "|" + k.split("|")[1] for k in B})
        for ci, mr in enumerate(methods):
            hs = [h for k, h in B.items() if k.startswith(mr + "|")]
            col = f"C{ci % 10}"
            for si, h in enumerate(hs):
                lab = mr if si == 0 else None
                key = "eval_logp" if mr.endswith("logp") else "eval_hit"
                if mr.endswith("logp"):
                    ax[0, 0].plot(h["samples"], h[key], color=col, label=lab, alpha=0.8)
                    ax[0, 1].plot(h["network_calls"], h[key], color=col, alpha=0.8)
                    ax[0, 2].plot(h["wall"], h[key], color=col, alpha=0.8)
                    ax[1, 0].plot(h["samples"], h["eval_diversity_l2"], color=col, alpha=0.8)
                    ax[1, 1].plot(h["samples"], h["eval_frechet_to_base"], color=col, alpha=0.8)
                else:
                    ax[1, 2].plot(h["samples"], h[key], color=col, label=lab, alpha=0.8)
        ax[0, 0].set(xlabel="samples (chains)", ylabel="eval log p(3 | x0)")
        ax[0, 1].set(xlabel="network calls", xscale="log")
        ax[0, 2].set(xlabel="wall seconds")
        ax[1, 0].set(xlabel="samples", ylabel="diversity (mean pairwise L2)")
        ax[1, 1].set(xlabel="samples", ylabel="Frechet distance to base (classifier features)")
        ax[1, 2].set(xlabel="samples", ylabel="eval hit rate (non-differentiable reward)")
        ax[0, 0].legend(fontsize=7)
        ax[1, 2].legend(fontsize=7)
        fig.suptitle("Experiment B: fine-tuning the digits DDPM (each line one seed)")
        fig.tight_layout()
        fig.savefig(out / "expB.png", dpi=110)
        plt.close(fig)
    plot_samples(c, out)


def stage_post(c, out: Path) -> None:
    """Final-model diagnostics of every saved fine-tune on 256 fixed-noise chains: reward, hit rate,
    class entropy, out-of-range pixels, and diversity of the *clipped* images (x0 clipped to [-1, 1],
    so that pixels drifting outside the data range do not count as diversity) -> post.json."""
    from rands.applications.rlr import sample_chain
    _, clf = load_assets(out)
    sch = schedule(c)
    bank = NoiseBank.draw(c["T"], 256 if not c.get("sel_equal_only") else 32, (64,),
                          torch.Generator().manual_seed(31337))
    lp, hit = ClassifierLogProb(clf, TARGET), ClassifierHit(clf, TARGET)
    ft = out / "assets" / "finetunes"
    rows = {}
    for name, path in [("base", out / "assets" / "ddpm.npz")] + [(f.stem, f) for f in sorted(ft.glob("*.npz"))]:
        with torch.no_grad():
            x0 = sample_chain(load_npz(path), sch, bank).x0
            xc = x0.clamp(-1, 1)
            pred = clf(xc).argmax(1)
            p = torch.bincount(pred, minlength=10).double() / pred.numel()
            is3 = pred == TARGET
            d = torch.cdist(xc, xc)
            n = xc.shape[0]
            d3 = torch.cdist(xc[is3], xc[is3]) if int(is3.sum()) > 1 else None
            rows[name] = {"logp": float(lp(x0).mean()), "hit": float(hit(x0).mean()),
                          "logp_clipped": float(lp(xc).mean()),
                          "class_entropy": float(-(p[p > 0] * p[p > 0].log()).sum()),
                          "out_of_range": float((x0.abs() > 1.2).double().mean()),
                          "max_abs_pixel": float(x0.abs().max()),
                          "diversity_clipped": float(d.sum() / (n * (n - 1))),
                          "diversity_clipped_within_target": (float(d3.sum() / (d3.shape[0] * (d3.shape[0] - 1)))
                                                              if d3 is not None else float("nan"))}
    agg: dict = {}
    for name, r in rows.items():
        key = name.rsplit("_s", 1)[0] if name != "base" else "base"
        agg.setdefault(key, []).append(r)
    summary = {k: {f: float(np.mean([r[f] for r in v])) for f in v[0]} | {"n_seeds": len(v)} for k, v in agg.items()}
    (out / "post.json").write_text(json.dumps({"per_model": rows, "per_method_mean": summary}, indent=1))
    print(f"{'model':24s} {'logp':>7s} {'hit':>6s} {'H':>5s} {'oor':>6s} {'div_c':>6s} {'div_c3':>6s}")
    for k, r in summary.items():
        print(f"{k:24s} {r['logp']:7.3f} {r['hit']:6.3f} {r['class_entropy']:5.2f} {r['out_of_range']:6.3f} "
              f"{r['diversity_clipped']:6.3f} {r['diversity_clipped_within_target']:6.3f}")


def plot_samples(c, out: Path) -> None:
    """Grid of final samples (seed 0, same noise) of the base model and each fine-tune."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rands.applications.rlr import sample_chain
    ft = out / "assets" / "finetunes"
    rows = [("base", out / "assets" / "ddpm.npz")]
    rows += [(f.stem, f) for f in sorted(ft.glob("*_s0.npz"))] if ft.exists() else []
    if len(rows) < 2:
        return
    sch = schedule(c)
    bank = NoiseBank.draw(c["T"], 12, (64,), torch.Generator().manual_seed(5))
    fig, ax = plt.subplots(len(rows), 12, figsize=(12, 1.05 * len(rows)))
    for i, (name, path) in enumerate(rows):
        x0 = sample_chain(load_npz(path), sch, bank).x0.reshape(-1, 8, 8).numpy()
        for j in range(12):
            ax[i, j].imshow(x0[j], cmap="gray_r", vmin=-1, vmax=1)
            ax[i, j].set_xticks([])
            ax[i, j].set_yticks([])
        ax[i, 0].set_ylabel(name.replace("_s0", ""), rotation=0, ha="right", fontsize=7)
    fig.suptitle("Final samples (seed 0, same noise per column); grey scale clipped to [-1, 1]")
    fig.tight_layout()
    fig.savefig(out / "samples.png", dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stages", nargs="+", choices=["assets", "A", "B", "merge", "post", "select", "plots", "all"])
    ap.add_argument("--only", default=None, help="comma-separated estimators (A) or methods (B)")
    ap.add_argument("--shard", type=int, default=None, help="A: shard index (own replication stream)")
    ap.add_argument("--nshards", type=int, default=1, help="A: number of shards; each runs reps / nshards")
    ap.add_argument("--tag", default="", help="output suffix of A/B (shards merged by the 'merge' stage)")
    ap.add_argument("--hit", choices=["yes", "no", "only", "ddpo", "nofo"], default="yes",
                    help="B: also run the non-differentiable-reward jobs")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--out", default=None, help="output folder (default: this folder; smoke: required)")
    ap.add_argument("--reps", type=int, default=None, help="override replications of experiment A")
    ap.add_argument("--seeds", type=int, default=None, help="override seeds of experiment B")
    ap.add_argument("--updates", type=int, default=None, help="override updates of experiment B")
    args = ap.parse_args(argv)
    c = cfg(args.smoke)
    if args.reps:
        c["reps"] = args.reps
    if args.seeds:
        c["b_seeds"] = args.seeds
    if args.updates:
        c["b_updates"] = args.updates
    out = Path(args.out) if args.out else HERE
    out.mkdir(parents=True, exist_ok=True)
    stages = ["assets", "A", "B", "post", "select", "plots"] if "all" in args.stages else args.stages
    only = args.only.split(",") if args.only else None
    for s in stages:
        t0 = time.time()
        if s == "A":
            stage_A(c, out, only=only, tag=args.tag, shard=args.shard, nshards=args.nshards)
        elif s == "B":
            ms = only or c.get("b_methods", EST_B)
            jobs = [] if args.hit in ("only", "ddpo", "nofo") else [(m, "logp") for m in ms]
            if args.hit in ("yes", "only", "ddpo"):
                jobs.append(("ddpo", "hit"))
            if args.hit in ("yes", "only", "nofo"):
                jobs.append(("rlr_h2_nofo", "hit"))
            stage_B(c, out, tag=args.tag, jobs=jobs)
        else:
            {"assets": stage_assets, "merge": stage_merge, "post": stage_post, "select": stage_select,
             "plots": stage_plots}[s](c, out)
        print(f"== stage {s} done in {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
