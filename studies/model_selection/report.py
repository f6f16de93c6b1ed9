"""Markdown tables of results/*.json (pasted into README.md by hand with the verdict).

    python studies/model_selection/report.py > studies/model_selection/results/tables.md
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def key_table(suffix: str) -> None:
    """One row per method, one column per data set: PGS [Wilson 95%] (mean fits)."""
    res = {}
    for path in sorted((HERE / "results").glob(f"*{suffix}.json")):
        r = json.loads(path.read_text())
        if isinstance(r, dict) and "methods" in r and (suffix or r.get("regime") != "tight"):
            res[r["dataset"]] = r
    names = list(res)
    print("| method | " + " | ".join(f"{n} (k={res[n]['k']}, delta={res[n]['delta']}, "
                                      f"{res[n]['n_good']} good)" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    labels = list(dict.fromkeys(label.split(" n_iter")[0].split(" 10 trials")[0].split(" 50 trials")[0]
                                for n in names for label in res[n]["methods"]))
    for lab in labels:
        cells = []
        for n in names:
            m = next((v for key, v in res[n]["methods"].items() if key.startswith(lab)), None)
            cells.append("" if m is None else
                         f"{m['pgs']:.2f} [{m['pgs_ci'][0]:.2f}, {m['pgs_ci'][1]:.2f}] ({m['mean_fits']:.0f})")
        print(f"| {lab} | " + " | ".join(cells) + " |")
    print()


def main() -> None:
    print("## Key tables: PGS [Wilson 95%] (mean fits per search), 100 macroreplications\n")
    print("### default delta\n")
    key_table("")
    print("### tight delta (baselines re-scored from their recorded picks)\n")
    key_table("_tight")
    for path in sorted((HERE / "results").glob("*.json")):
        r = json.loads(path.read_text())
        if not isinstance(r, dict) or "methods" not in r:     # *_curve.json, *_halving.json
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
