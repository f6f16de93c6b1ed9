"""Plot the recorded FlowLine(L=20) truth table: python studies/flowline_truth/plot.py -> truth.png"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rands.problems.flowline import FlowLine  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = FlowLine(L=20)
    m, se = p.true_means, p.true_means_se
    order = np.argsort(-m)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    a1.hist(m, bins=80, color="C0")
    a1.set_xlabel("estimated mean throughput")
    a1.set_ylabel("alternatives")
    a1.set_title(f"FlowLine L=20: {p.k} alternatives")
    top = order[:25]
    y = np.arange(len(top))[::-1]
    a2.errorbar(m[top], y, xerr=2 * se[top], fmt="o", ms=3, capsize=2)
    a2.set_yticks(y, [p.label(i) for i in top], fontsize=7)
    a2.set_xlabel("mean +- 2 SE (CRN estimate)")
    a2.set_title("25 best alternatives")
    fig.tight_layout()
    fig.savefig(HERE / "truth.png", dpi=120)


if __name__ == "__main__":
    main()
