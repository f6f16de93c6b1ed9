"""``rands demo``: select the best of the 3,249 flow-line alternatives (TPMax, L = 20).

Runs the knockout tournament (KT, Zhong & Hong 2022) with CRN, alpha = 0.05 and
indifference zone delta = 0.1 jobs per unit time, prints the selected line and
its estimated throughput, writes ``result.json`` and ``demo.png``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

DEMO_PROCEDURE = {"name": "kt", "alpha": 0.05, "delta": 0.1, "n0": 20, "g": 20, "n_groups": 8, "crn": True}


def plot_result(result, problem, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = result.sample_sizes
    m = result.means
    seen = n > 0
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    a1.scatter(m[seen], n[seen], s=4, alpha=0.5, label="alternatives")
    a1.scatter([m[result.best]], [n[result.best]], color="red", s=40, label="selected")
    a1.set_xlabel("estimated throughput")
    a1.set_ylabel("samples taken")
    a1.set_yscale("log")
    a1.set_title(f"{result.procedure.upper()}: {result.total_samples:,} samples, k = {len(n):,}")
    a1.legend()
    top = np.argsort(np.where(n >= 20, m, -np.inf))[::-1][:15]
    top = top[np.isfinite(m[top]) & (n[top] >= 20)]
    truth = getattr(problem, "true_means", None)
    ypos = np.arange(len(top))[::-1]
    a2.barh(ypos, m[top], color=["red" if i == result.best else "C0" for i in top], alpha=0.7,
            label="estimate")
    if truth is not None:
        a2.scatter(truth[top], ypos, color="k", s=12, zorder=3, label="recorded true mean")
    a2.set_yticks(ypos, [problem.label(i) for i in top], fontsize=7)
    lo = np.nanmin(m[top]) if len(top) else 0
    a2.set_xlim(lo - 0.05 * abs(lo), None)
    a2.set_xlabel("throughput")
    a2.set_title("most promising alternatives (>= 20 samples)")
    a2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo(output: str = "rands_demo_output", seed: int = 2024, quick: bool = False) -> int:
    from . import problems
    from .selection import select

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    problem = problems.make("flowline", L=10 if quick else 20)
    params = dict(DEMO_PROCEDURE)
    name = params.pop("name")
    print(f"rands demo: selecting the best of {problem.k:,} flow-line alternatives "
          f"(TPMax, L={problem.L}) with {name.upper()} {params}")
    result = select(problem, name, seed=seed, progress=True, **params)
    print(f"selected alternative {result.best}: (s1,s2,s3|b2,b3) = {result.best_label}, "
          f"estimated throughput {result.best_mean:.4f} from {result.sample_sizes[result.best]} samples")
    if problem.true_means is not None:
        mu = problem.true_means
        print(f"recorded true mean of the selection {mu[result.best]:.4f}; best recorded "
              f"{mu.max():.4f} ({problem.label(int(np.argmax(mu)))})")
    print(f"total samples {result.total_samples:,}, wall time {result.wall_time:.1f} s")
    (out / "result.json").write_text(result.to_json(indent=1))
    plot_result(result, problem, out / "demo.png")
    print(f"wrote {out / 'result.json'} and {out / 'demo.png'}")
    return 0
