"""Plots for the fixed-precision validation study (reads results_fixed_precision.json).

Usage: python studies/engine_validation/plot_fixed_precision.py
Writes fixed_precision_pcs.png (PCS/PGS with Wilson 95% intervals vs 1-alpha)
and kt_samples_per_system.png (KT mean total samples / k vs k, SC).
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).parent


def main() -> None:
    res = json.loads((HERE / "results_fixed_precision.json").read_text())
    rows = res["rows"]
    fig, axes = plt.subplots(1, 4, figsize=(15, 4), sharey=True)
    for ax, (k, config) in zip(axes, [(10, "slippage"), (10, "mdm"), (100, "slippage"), (100, "mdm")]):
        sel = [r for r in rows if r["k"] == k and r["config"] == config]
        names = [r["procedure"] for r in sel]
        # PCS for the PCS procedures, PGS for GSP (its guarantee)
        val = np.array([r["pgs"] if r["procedure"] == "GSP" else r["pcs"] for r in sel])
        ci = np.array([r["pgs_ci"] if r["procedure"] == "GSP" else r["pcs_ci"] for r in sel])
        x = np.arange(len(sel))
        ax.errorbar(x, val, yerr=[val - ci[:, 0], ci[:, 1] - val], fmt="o", capsize=3)
        ax.axhline(0.95, color="r", ls="--", lw=1, label="1 - alpha")
        ax.set_xticks(x, names, rotation=45, ha="right")
        ax.set_title(f"{config}, k = {k}")
    axes[0].set_ylabel("PCS (GSP: PGS), Wilson 95% CI")
    axes[0].legend(loc="lower left")
    fig.suptitle(f"Fixed-precision procedures, delta = 0.5, sigma = 1, n0 = 20, "
                 f"{res['settings']['macroreps']} macroreplications")
    fig.tight_layout()
    fig.savefig(HERE / "fixed_precision_pcs.png", dpi=110)
    plt.close(fig)

    sc = res["kt_scaling"]
    if sc:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ks = np.array([r["k"] for r in sc])
        npk = np.array([r["samples_per_system"] for r in sc])
        se = np.array([r["sd_samples"] / np.sqrt(r["macroreps"]) / r["k"] for r in sc])
        ax.errorbar(ks, npk, yerr=2 * se, fmt="o-", capsize=3)
        ax.set_xscale("log")
        ax.set_xlabel("k")
        ax.set_ylabel("mean total samples / k")
        ax.set_ylim(0, max(npk) * 1.3)
        ax.set_title("KT on SC (g = 20, p = 8): O(k) total samples")
        fig.tight_layout()
        fig.savefig(HERE / "kt_samples_per_system.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()
