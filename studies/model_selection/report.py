"""Markdown tables of results/*.json (pasted into README.md by hand with the verdict).

    python studies/model_selection/report.py > studies/model_selection/results/tables.md
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    for path in sorted((HERE / "results").glob("*.json")):
        r = json.loads(path.read_text())
        tag = ' (tight delta; baselines re-scored from their recorded picks)' if r.get('regime') == 'tight' else ''
        print(f"### {r['dataset']}{tag}: k = {r['k']}, delta = {r['delta']}, {r['n_good']} good candidates, "
              f"{r['methods']['GridSearchCV 5-fold']['macroreps']} macroreplications\n")
        print("| method | PGS | Wilson 95% | PCS | mean fits |")
        print("|---|---|---|---|---|")
        rows = list(r["methods"].items())
        if "real_rssearch_kn" in r:
            real = r["real_rssearch_kn"]
            used = f"; {real['mean_fits_used']:.0f} used" if "mean_fits_used" in real else ""
            rows.append((f"RSSearchCV KN, real fits ({real['macroreps']} macroreps{used})", real))
        for label, m in rows:
            lo, hi = m["pgs_ci"]
            print(f"| {label} | {m['pgs']:.2f} | [{lo:.2f}, {hi:.2f}] | {m['pcs']:.2f} | {m['mean_fits']:.0f} |")
        print(f"\nGridSearchCV on partitions 0 and 1 equals the table's pick and means: "
              f"{r['gridsearch_matches_table']}\n")


if __name__ == "__main__":
    main()
