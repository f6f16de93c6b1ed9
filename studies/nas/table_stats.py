"""Is a recorded NAS table a selection problem clustering could help with? Old vs rebuilt table.

    python studies/nas/table_stats.py applications/nas/data/mini_digits.json \
        applications/nas/data/mini_digits_fixed.json --out studies/nas/results/table_stats.md

Per table (accuracy in points): cells x seeds; per-architecture seed sd (median, range); the
spread of the true means (mean over seeds); gap best - runner-up and the number of cells within
delta of the best; sd / delta for the good cells (within 2 points of the best); the mean
correlation across seeds between architectures (CRN: same seed index), overall, within and
across the 5 operation clusters that run_matched.py plants (op on the input -> output edge);
and the stability of pilot clustering: two disjoint 5-seed pilots, spherical k-means with 5 and
16 clusters, adjusted Rand index between their partitions (mean over 20 pairs of pilots drawn
without replacement).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rands.applications.nas.analysis import benchmark_summary
from rands.applications.nas.tabular import TabularNAS
from rands.clustering import adjusted_rand_index, spherical_kmeans

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_matched import planted_clusters  # noqa: E402


def _mean_offdiag(r: np.ndarray, mask: np.ndarray) -> float:
    m = mask & ~np.eye(r.shape[0], dtype=bool)
    return float(np.nanmean(r[m])) if m.any() else float("nan")


def stats(path: Path, delta: float, pilot: int = 5, pairs: int = 20) -> dict:
    tab = TabularNAS.from_file(path)
    x = tab.table                                   # (k, seeds), points
    k, m = x.shape
    sd = np.nanstd(x, axis=1, ddof=1)
    mu = tab.true_means
    summ = benchmark_summary(mu, delta)
    good = mu > mu.max() - 2.0
    r = np.corrcoef(x)
    lab = planted_clusters(tab.archs)
    same = lab[:, None] == lab[None, :]
    rng = np.random.default_rng(2026)
    ari = {5: [], 16: []}
    for _ in range(pairs if m >= 2 * pilot else 0):
        cols = rng.permutation(m)
        a, b = x[:, cols[:pilot]], x[:, cols[pilot:2 * pilot]]
        for c in ari:
            la = spherical_kmeans(a, c, seed=1).labels
            lb = spherical_kmeans(b, c, seed=1).labels
            ari[c].append(adjusted_rand_index(la, lb))
    return {"file": path.name, "k": k, "seeds": m, "sd_median": float(np.median(sd)),
            "sd_range": (float(sd.min()), float(sd.max())), "mean_range": (float(mu.min()), float(mu.max())),
            "gap": summ["gap"], "within_delta": summ["n_within_delta"],
            "sd_over_delta_good": float(np.median(sd[good]) / delta), "n_good": int(good.sum()),
            "corr_all": _mean_offdiag(r, np.ones_like(same)), "corr_within": _mean_offdiag(r, same),
            "corr_across": _mean_offdiag(r, ~same),
            "ari5": float(np.mean(ari[5])) if ari[5] else float("nan"),
            "ari16": float(np.mean(ari[16])) if ari[16] else float("nan")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tables", nargs="+")
    ap.add_argument("--delta", type=float, default=0.5)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    rows = [stats(Path(t), a.delta) for t in a.tables]
    lines = [f"| table | cells x seeds | seed sd median [range] | true means [range] | best - 2nd | within delta "
             f"({a.delta}) | sd / delta (good cells, n) | corr all / within / across op clusters | "
             "pilot ARI 5 / 16 clusters |", "|---|---|---|---|---|---|---|---|---|"]
    for s in rows:
        lines.append(f"| {s['file']} | {s['k']} x {s['seeds']} | {s['sd_median']:.2f} [{s['sd_range'][0]:.2f}, "
                     f"{s['sd_range'][1]:.2f}] | [{s['mean_range'][0]:.1f}, {s['mean_range'][1]:.1f}] | "
                     f"{s['gap']:.3f} | {s['within_delta']} | {s['sd_over_delta_good']:.2f} ({s['n_good']}) | "
                     f"{s['corr_all']:.3f} / {s['corr_within']:.3f} / {s['corr_across']:.3f} | "
                     f"{s['ari5']:.3f} / {s['ari16']:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(f"Command: `python studies/nas/table_stats.py {' '.join(argv or sys.argv[1:])}`\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
