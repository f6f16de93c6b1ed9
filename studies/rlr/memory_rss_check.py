"""Independent check of the memory-saving form: process peak RSS (not the saved-tensor meter).

    python studies/rlr/memory_rss_check.py [--T 10 20 50] [--batch 2048] > studies/rlr/memory_rss.md

Each (estimator, form, T) runs in a fresh Python process: build the model and noise, sample the chain
without a graph, record ru_maxrss, then compute one gradient either streamed (``Estimator.gradient``, one
term or chunk at a time) or batched (backward of the summed ``surrogate``, all terms alive at once), and
record ru_maxrss again. The increase is the peak memory the gradient needed beyond sampling (activations,
autograd buffers, allocator overhead). The batch is large (2048 chains of dim 64, hidden 256) so
activations dominate the increase; one sampler step's saved activations are also reported (meter).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import numpy as np, torch
torch.set_num_threads(1)
from rands.applications.rlr import DDIMSchedule, NoiseBank, linear_alphas_cumprod, make_estimator, sample_chain
from rands.applications.rlr.models import MLPDenoiser
from rands.applications.rlr.rewards import QuadraticReward
from rands.applications.rlr.estimator import flat_grad
from rands.applications.rlr.memory import step_saved_bytes
name, kw, form, T, B = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)
D = 64
model = MLPDenoiser(dim=D, hidden=256, temb=16, depth=2)
sched = DDIMSchedule.from_alphas(linear_alphas_cumprod(200), T, eta=1.0)
reward = QuadraticReward(torch.zeros(D))
bank = NoiseBank.draw(T, B, (D,), torch.Generator().manual_seed(1))
est = make_estimator(name, **kw)
terms = est.plan.sample(np.random.default_rng(3), T)
traj = sample_chain(model, sched, bank)
step = step_saved_bytes(model, sched, bank.x_T)
kib0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if form == "streamed":
    g, info = est.gradient(model, sched, bank, reward, rng=None, terms=terms, traj=traj)
else:
    S, info = est.surrogate(model, sched, bank, reward, rng=None, terms=terms, traj=traj)
    g = flat_grad(model, S)
kib1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_increase_mib": (kib1 - kib0) / 1024, "step_mib": step / 2**20,
                  "norm": float(g.norm())}))
"""

CASES = [("full_bp", {}, ["batched"]), ("draft_2", {}, ["batched"]), ("ddpo", {}, ["streamed", "batched"]),
         ("rlr", {"h": 2}, ["streamed", "batched"]), ("rlr", {"h": 4}, ["streamed"]),
         ("hybrid_bp_2", {}, ["streamed", "batched"])]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--batch", type=int, default=2048)
    args = ap.parse_args(argv)
    print("# Peak RSS increase of one gradient (fresh process each; `python studies/rlr/memory_rss_check.py "
          + " ".join(sys.argv[1:]) + "`)\n")
    print(f"Batch {args.batch} chains, dim 64, MLP hidden 256; float32. Increase of ru_maxrss over the "
          "sampled state, in MiB and in units of one step's saved activations.\n")
    print("| T | estimator | form | RSS increase (MiB) | in steps | |g| |")
    print("|---|---|---|---|---|---|")
    for T in args.T:
        for name, kw, forms in CASES:
            for form in forms:
                out = subprocess.run([sys.executable, "-c", CHILD, name, json.dumps(kw), form, str(T), str(args.batch)],
                                     capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                lab = name + ("" if not kw else "(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")")
                print(f"| {T} | {lab} | {form} | {r['rss_increase_mib']:.1f} | "
                      f"{r['rss_increase_mib'] / r['step_mib']:.1f} | {r['norm']:.4g} |", flush=True)


if __name__ == "__main__":
    main()
