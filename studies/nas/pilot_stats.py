"""Seed noise of the fixed-split 10-epoch pilot against the shipped 2-epoch benchmark, same cells.

    python studies/nas/pilot_stats.py studies/nas/results/pilot_fixed_6x8.json

Per architecture: mean and sd over seeds (accuracy points) in the pilot (fixed validation split,
10 epochs, batch 128) and in applications/nas/data/mini_digits.json (split drawn per seed, 2 epochs)
where the cell is in both; mean pairwise correlation across seeds between architectures (CRN: same
seed index); wall seconds per run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from rands.applications.nas.tabular import MINI_PATH


def main(path: str) -> None:
    p = json.loads(Path(path).read_text())
    old = json.loads(MINI_PATH.read_text())
    P = 100 * np.asarray(p["valid_acc"])
    oidx = {a: i for i, a in enumerate(old["arch_index"])}
    print(f"pilot: {P.shape[0]} cells x {P.shape[1]} seeds, config {p['config']}")
    print("| cell | pilot mean | pilot sd | old mean (2 ep.) | old sd |")
    print("|---|---|---|---|---|")
    for i, (a, s) in enumerate(zip(p["arch_index"], p["archs"])):
        o = oidx.get(a)
        om, osd = ("-", "-") if o is None else (f"{100 * np.mean(old['valid_acc'][o]):.2f}",
                                                  f"{100 * np.std(old['valid_acc'][o], ddof=1):.2f}")
        print(f"| `{s}` | {P[i].mean():.2f} | {P[i].std(ddof=1):.2f} | {om} | {osd} |")
    live = P.std(1, ddof=1) > 0
    C = np.corrcoef(P[live])
    iu = np.triu_indices(C.shape[0], 1)
    print(f"\nmedian seed sd {np.median(P.std(1, ddof=1)):.2f} points; mean cross-architecture correlation "
          f"{C[iu].mean():.2f} over {iu[0].size} pairs of non-constant cells; resolution 100/{p['config']['n_valid']}"
          f" = {100 / p['config']['n_valid']:.3f} points; mean wall seconds per run (loaded machine) {np.mean(p['train_seconds']):.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "studies/nas/results/pilot_fixed_6x8.json")
