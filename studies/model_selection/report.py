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
        if path.stem.endswith("_curve"):
            continue
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
            if m["macroreps"] != r["methods"]["GridSearchCV 5-fold"]["macroreps"] and "real" not in label:
                label = f"{label} ({m['macroreps']} macroreps)"
            print(f"| {label} | {m['pgs']:.2f} | [{lo:.2f}, {hi:.2f}] | {m['pcs']:.2f} | {m['mean_fits']:.0f} |")
        print(f"\nGridSearchCV on partitions 0 and 1 equals the table's pick and means: "
              f"{r['gridsearch_matches_table']}\n")


    print("### GridSearchCV with R x repeated 5-fold (R partitions resampled per macroreplication)\n")
    print("| data set | delta | " + " | ".join(f"R={R}" for R in (1, 2, 5, 10, 20, 40, 80)) + " |")
    print("|---|---|" + "---|" * 7)
    for path in sorted((HERE / "results").glob("*_curve.json")):
        c = json.loads(path.read_text())
        for regime in ("default", "tight"):
            cells = [f"{r['pgs']:.2f} ({f})" for f, r in zip(c["fits"], c[regime]["rows"])]
            print(f"| {c['dataset']} | {c[regime]['delta']} | " + " | ".join(cells) + " |")
    print("\nCells: PGS (fits).")


if __name__ == "__main__":
    main()
