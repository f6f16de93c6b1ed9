"""Two-stage Neyman with and without pilot reuse vs uniform: bias along the gradient and MSE.

Tiny MLP (4-3-3, tanh), layer-wise LR estimator (sigma 1e-3, antithetic), batch of B points, budget
2 * units_per_point * B forward passes, exact batch-mean gradient by backprop. Per step: projection
<ghat, g>/||g||^2 (1 = unbiased scale) and relative squared error ||ghat - g||^2 / ||g||^2.
Run: nice -n 19 python studies/flops/neyman_bias.py  (about a minute on one core)
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rands.applications.flops import ForwardGradient, LayerwiseLR, TwoStageNeyman, Uniform

torch.set_num_threads(1)
B, REPS = 400, 300


def run(allocator, units, seed=9):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 3)).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (B,), generator=g)

    def closure(rows):
        rows = torch.arange(B) if rows is None else rows
        return nn.functional.cross_entropy(model(x[rows]), y[rows], reduction="none")
    est = LayerwiseLR(model, sigma=1e-3)
    ex = torch.cat([t.reshape(-1) for t in torch.autograd.grad(nn.functional.cross_entropy(model(x), y),
                                                               est.targets())])
    opt = ForwardGradient(model.parameters(), estimator=est, allocator=allocator, queries=2 * units * B,
                          generator=torch.Generator().manual_seed(seed))
    pr, se2 = [], []
    for _ in range(REPS):
        gh = torch.cat([t.reshape(-1) for t in opt.estimate(closure, B)[0]])
        pr.append(float(gh @ ex / (ex @ ex)))
        se2.append(float((gh - ex).pow(2).sum() / (ex @ ex)))
    pr, se2 = np.array(pr), np.array(se2)
    return {"projection": float(pr.mean()), "projection_se": float(pr.std() / math.sqrt(REPS)),
            "z": float((pr.mean() - 1) / (pr.std() / math.sqrt(REPS))),
            "rel_mse": float(se2.mean()), "rel_mse_se": float(se2.std() / math.sqrt(REPS))}


def main():
    rows = []
    for units in (4, 6, 12):
        for name, al in (("uniform", Uniform()), ("neyman, pilots reused (old)", TwoStageNeyman(reuse_pilots=True)),
                         ("neyman, pilots only allocate", TwoStageNeyman()),
                         ("neyman, 1 pilot (second moment), pilots only allocate",
                          TwoStageNeyman(pilot=1, moment="second"))):
            r = {"allocator": name, "units_per_point": units, "pilot": getattr(al, "pilot", 0), **run(al, units)}
            rows.append(r)
            print(r, flush=True)
    here = Path(__file__).parent
    (here / "neyman_bias.json").write_text(json.dumps({"B": B, "reps": REPS, "rows": rows,
                                                       "command": "nice -n 19 python studies/flops/neyman_bias.py"},
                                                      indent=1))
    lines = ["| units/point | allocator | pilot | projection on g (+- se) | z | relative MSE (+- se) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['units_per_point']} | {r['allocator']} | {r['pilot']} | {r['projection']:.3f} +- {r['projection_se']:.3f} | "
                     f"{r['z']:+.1f} | {r['rel_mse']:.3f} +- {r['rel_mse_se']:.3f} |")
    (here / "neyman_bias.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
