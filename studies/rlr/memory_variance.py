"""Peak memory and gradient variance of RLR(h) vs full backprop, DRaFT-K, BP-K + LR and DDPO.

At fixed theta (the study's trained DDPM on 8x8 digits, reward log p(3 | x0) of the frozen
classifier), for each (T, eta) cell: the full-backprop gradient over ``--truth`` chains is the
reference; every estimator gives ``--reps`` replications of a batch of ``--batch`` chains under common
random numbers. Per estimator: peak saved-activation bytes of one estimate in the memory-saving form
(:meth:`Estimator.gradient`, measured with saved-tensor hooks) and of the summed surrogate (all terms
alive at once), in bytes and in units of one sampler step on the batch; tr Cov and MSE per batch with
percentile-bootstrap 95 % CIs (exact bootstrap of tr Cov through the Gram matrix of the replications);
relative bias with its Monte Carlo noise floor.

Resumable: one JSON per cell under ``memvar/``; a finished cell is skipped. ``--report`` writes
``memvar.md`` (tables grouped by peak memory) from the cells present.

    nice -n 19 python studies/rlr/memory_variance.py --T 10 20 50 --eta 1.0 0.5 0.1
    python studies/rlr/memory_variance.py --report
"""
from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from rands.applications.rlr import DDIMSchedule, NoiseBank, estimate_gradient, linear_alphas_cumprod  # noqa
from rands.applications.rlr import make_estimator  # noqa: E402
from rands.applications.rlr.estimator import flat_grad, replicated_gradients  # noqa: E402
from rands.applications.rlr.memory import peak_saved_bytes, step_saved_bytes  # noqa: E402
from rands.applications.rlr.models import load_npz  # noqa: E402
from rands.applications.rlr.rewards import ClassifierLogProb  # noqa: E402

HERE = Path(__file__).resolve().parent
TARGET = 3
TRAIN_STEPS = 200
# name -> (make_estimator name, kwargs, peak steps in the memory-saving form; None = T)
ESTIMATORS = {
    "full_bp": ("full_bp", {}, None),
    "draft_1": ("draft_1", {}, 1),
    "ddpo": ("ddpo", {}, 1),
    "rlr_h1 (= BP-1 + LR)": ("rlr", {"h": 1}, 1),
    "draft_2": ("draft_2", {}, 2),
    "rlr_h2": ("rlr", {"h": 2}, 2),
    "bp2_lr": ("hybrid_bp_2", {}, 2),
    "draft_4": ("draft_4", {}, 4),
    "rlr_h4": ("rlr", {"h": 4}, 4),
    "bp4_lr": ("hybrid_bp_4", {}, 4),
}


def seed_of(*keys) -> int:
    return int(np.random.SeedSequence([zlib.crc32(str(k).encode()) for k in keys]).generate_state(1)[0])


def bootstrap_trcov(V: np.ndarray, gram: np.ndarray, rng: np.random.Generator, B: int) -> np.ndarray:
    """Bootstrap replicates of tr Cov over resampled rows of V, exactly, from the Gram matrix V V^T."""
    M = V.shape[0]
    sq = np.diag(gram)
    out = np.empty(B)
    for b in range(B):
        w = np.bincount(rng.integers(0, M, M), minlength=M).astype(np.float64)
        out[b] = (w @ sq - (w @ gram @ w) / M) / (M - 1)
    return out


def run_cell(T: int, eta: float, a) -> dict:
    model = load_npz(HERE / "assets" / "ddpm.npz")
    clf = load_npz(HERE / "assets" / "classifier.npz")
    for p in model.parameters():
        p.requires_grad_(True)
    reward = ClassifierLogProb(clf, TARGET)
    sch = DDIMSchedule.from_alphas(linear_alphas_cumprod(TRAIN_STEPS), T, eta)
    g = torch.Generator().manual_seed(seed_of("truth", T, eta))
    t0 = time.time()
    nb = a.truth // 500
    acc, acc2 = 0.0, 0.0
    for _ in range(nb):
        gr, _ = estimate_gradient(model, sch, NoiseBank.draw(T, 500, (64,), g), reward, make_estimator("full_bp"),
                                  rng=None)
        gr = gr.double().numpy()
        acc, acc2 = acc + gr, acc2 + gr * gr
    truth = acc / nb
    truth_var = float(((acc2 / nb - truth ** 2) * nb / (nb - 1)).sum() / nb)  # tr Var of the truth estimate
    tn = float(np.linalg.norm(truth))
    t_truth = time.time() - t0
    # memory: one batch, streamed (one term at a time) and summed (all terms alive at once)
    bank = NoiseBank.draw(T, a.batch, (64,), torch.Generator().manual_seed(seed_of("mem", T, eta)))
    step = step_saved_bytes(model, sch, bank.x_T)
    g = torch.Generator().manual_seed(seed_of("reps", T, eta))
    xT = torch.randn((a.reps, a.batch, 64), generator=g)
    eps = torch.randn((T, a.reps, a.batch, 64), generator=g)
    rows = {}
    for name, (base, kw, _) in ESTIMATORS.items():
        est = make_estimator(base, **kw)
        rng = np.random.default_rng(seed_of(name, T, eta))
        terms = est.plan.sample(rng, T)
        streamed = peak_saved_bytes(model, lambda: est.gradient(model, sch, bank, reward, rng=None, terms=terms),
                                    also_exclude=[clf])
        summed = peak_saved_bytes(model, lambda: flat_grad(model, est.surrogate(model, sch, bank, reward, rng=None,
                                                                                terms=terms)[0]),
                                  also_exclude=[clf])
        t1 = time.time()
        maps = [tuple(est.plan.sample(rng, T)) for _ in range(a.reps)]
        V = np.empty((a.reps, truth.size))
        units = 0.0
        for key in set(maps):
            idx = [i for i, m in enumerate(maps) if m == key]
            for s in range(0, len(idx), 100):
                sub = idx[s:s + 100]
                Vg, cost = replicated_gradients(model, sch, reward, est, xT[sub], eps[:, sub], list(key))
                V[sub] = Vg.double().numpy()
                units += cost["units"] * len(sub)
        secs = time.time() - t1
        M = a.reps
        mean = V.mean(0)
        gram = V @ V.T
        trcov = float((np.trace(gram) - mean @ mean * M) / (M - 1))
        bs = bootstrap_trcov(V, gram, np.random.default_rng(seed_of("boot", name, T, eta)), a.boot)
        err = ((V - truth) ** 2).sum(1)
        bi = np.random.default_rng(seed_of("bootmse", name, T, eta)).integers(0, M, (a.boot, M))
        mse_bs = err[bi].mean(1)
        rows[name] = {
            "coverage": est.coverage(sch).describe(),
            "peak_bytes_streamed": int(streamed), "peak_steps_streamed": streamed / step,
            "peak_bytes_summed": int(summed), "peak_steps_summed": summed / step,
            "tr_cov": trcov, "tr_cov_ci": [float(np.quantile(bs, 0.025)), float(np.quantile(bs, 0.975))],
            "mse": float(err.mean()), "mse_ci": [float(np.quantile(mse_bs, 0.025)), float(np.quantile(mse_bs, 0.975))],
            "rel_bias": float(np.linalg.norm(mean - truth) / tn),
            "rel_bias_noise_floor": float(np.sqrt(trcov / M + truth_var) / tn),
            "cost_units_per_chain": units / M, "seconds": secs,
        }
        print(f"T={T} eta={eta} {name:22s} peak {streamed / step:5.2f} (summed {summed / step:5.2f}) steps  "
              f"trCov {trcov:10.4g} [{rows[name]['tr_cov_ci'][0]:.4g}, {rows[name]['tr_cov_ci'][1]:.4g}]  "
              f"relbias {rows[name]['rel_bias']:.3f}  {secs:.0f}s", flush=True)
    return {"T": T, "eta": eta, "batch": a.batch, "reps": a.reps, "truth_chains": a.truth, "truth_norm": tn,
            "truth_tr_var": truth_var, "step_bytes": step, "sigma": sch.sigma.tolist(), "params": int(truth.size),
            "truth_seconds": t_truth, "estimators": rows,
            "note": "tr_cov and mse per batch of `batch` chains; peak in saved-activation bytes of one estimate "
                    "(batch chains); step_bytes = one sampler step on the batch"}


def report(out: Path) -> None:
    cells = sorted((json.loads(p.read_text()) for p in (out / "memvar").glob("*.json")),
                   key=lambda c: (-c["eta"], c["T"]))
    lines = ["# Peak memory and gradient variance at fixed theta", "",
             "Generated by `python studies/rlr/memory_variance.py --report` from `memvar/*.json`.",
             "Peak = saved-activation memory of one estimate (batch of chains) in units of one sampler step "
             "(memory-saving form; in parentheses the summed surrogate, all terms alive at once). "
             "tr Cov and MSE per batch, relative to |g|^2 (95 % bootstrap CI). Rel. bias = |mean - g| / |g| "
             "(MC noise floor in parentheses).", ""]
    if cells:
        names = list(cells[0]["estimators"])
        hdr = " | ".join(f"T={c['T']} eta={c['eta']}" for c in cells)
        lines += ["## Summary: peak (steps, memory-saving form) and tr Cov / |g|^2 (MSE / |g|^2 for biased ones)",
                  "", f"| estimator | peak | {hdr} |", "|---|---|" + "---|" * len(cells)]
        for n in names:
            peaks = sorted({round(c["estimators"][n]["peak_steps_streamed"], 2) for c in cells})
            pk = "T + 0.33" if n == "full_bp" else "/".join(f"{p:.2f}" for p in peaks)
            vals = []
            for c in cells:
                r, g2 = c["estimators"][n], c["truth_norm"] ** 2
                biased = not r["coverage"].startswith("unbiased")
                vals.append(f"{r['mse'] / g2:.3g} (MSE)" if biased else f"{r['tr_cov'] / g2:.3g}")
            lines.append(f"| {n} | {pk} | " + " | ".join(vals) + " |")
        lines.append("")
    for c in cells:
        g2 = c["truth_norm"] ** 2
        lines += [f"## T = {c['T']}, eta = {c['eta']}  ({c['reps']} replications of {c['batch']} chains; "
                  f"truth {c['truth_chains']} chains; one step = {c['step_bytes'] / 1024:.0f} KiB)", "",
                  "| estimator | peak (steps) | tr Cov / g^2 [95 % CI] | MSE / g^2 [95 % CI] | rel. bias (floor) | "
                  "coverage |", "|---|---|---|---|---|---|"]
        for n, r in sorted(c["estimators"].items(), key=lambda kv: (round(kv[1]["peak_steps_streamed"]), kv[0])):
            lines.append(f"| {n} | {r['peak_steps_streamed']:.2f} ({r['peak_steps_summed']:.1f}) | "
                         f"{r['tr_cov'] / g2:.3g} [{r['tr_cov_ci'][0] / g2:.3g}, {r['tr_cov_ci'][1] / g2:.3g}] | "
                         f"{r['mse'] / g2:.3g} [{r['mse_ci'][0] / g2:.3g}, {r['mse_ci'][1] / g2:.3g}] | "
                         f"{r['rel_bias']:.3f} ({r['rel_bias_noise_floor']:.3f}) | {r['coverage'].split(':')[0]} |")
        lines.append("")
    (out / "memvar.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--eta", type=float, nargs="+", default=[1.0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--truth", type=int, default=20000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args(argv)
    if a.report:
        report(a.out)
        return
    (a.out / "memvar").mkdir(parents=True, exist_ok=True)
    for eta in a.eta:
        for T in a.T:
            path = a.out / "memvar" / f"T{T}_eta{eta}.json"
            if path.exists():
                print(f"skip {path.name} (done)")
                continue
            res = run_cell(T, eta, a)
            res["command"] = "nice -n 19 python studies/rlr/memory_variance.py " + " ".join(
                f"--{k} {v}" for k, v in [("reps", a.reps), ("batch", a.batch), ("truth", a.truth), ("boot", a.boot)])
            path.write_text(json.dumps(res, indent=1))
    report(a.out)


if __name__ == "__main__":
    main()
