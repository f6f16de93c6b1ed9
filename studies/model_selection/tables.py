"""Score tables: every candidate's test score on every fold of P shuffled 5-fold partitions.

T[i, p, f] = score of candidate i trained on the other folds of partition p (the
StratifiedKFold/KFold(5, shuffle=True, random_state=p) that GridSearchCV(cv=...) uses) and
scored on fold f. Each fold is an 80/20 split, so the mean over all P*5 folds estimates each
candidate's expected score over random 80/20 splits (the truth of the study). Written to
tables/<name>.npz with a checkpoint every 25 partitions (rerun to resume).

    nice -n 19 python studies/model_selection/tables.py --partitions 500
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import check_scoring

from setups import SETUPS, candidates, data, kfold

HERE = Path(__file__).resolve().parent


def _knn_fold(base, cands: list[dict], X, y, tr, te) -> np.ndarray:
    """r2 of every (n_neighbors, weights) candidate on one fold from one brute-force query of the
    largest n_neighbors: KNeighborsRegressor's own formulas on the first n sorted neighbours."""
    from sklearn.metrics import r2_score
    nmax = max(c["n_neighbors"] for c in cands)
    dist, ind = clone(base).set_params(n_neighbors=nmax).fit(X[tr], y[tr]).kneighbors(X[te])
    ys = y[tr][ind]
    out = np.empty(len(cands))
    for i, c in enumerate(cands):
        n = c["n_neighbors"]
        if c["weights"] == "uniform":
            pred = np.mean(ys[:, :n], axis=1)
        else:
            w = 1.0 / dist[:, :n]
            pred = np.sum(ys[:, :n] * w, axis=1) / np.sum(w, axis=1)
        out[i] = r2_score(y[te], pred)
    return out


def table(name: str, partitions: int, out: Path) -> None:
    X, y = data(name)
    cands = candidates(name)
    base = SETUPS[name]["estimator"]()
    scorer = check_scoring(base, SETUPS[name]["scoring"])
    T = np.full((len(cands), partitions, 5), np.nan)
    fit_s = 0.0
    if out.exists():
        old = np.load(out)
        done = min(int(old["done"]), partitions)
        T[:, :done] = old["T"][:, :done]
        fit_s = float(old["fit_seconds"])
    else:
        done = 0
    for p in range(done, partitions):
        t0 = time.process_time()
        for f, (tr, te) in enumerate(kfold(name, p).split(X, y)):
            if SETUPS[name].get("knn_table"):
                T[:, p, f] = _knn_fold(base, cands, X, y, tr, te)
                continue
            for i, params in enumerate(cands):
                est = clone(base).set_params(**params).fit(X[tr], y[tr])
                T[i, p, f] = scorer(est, X[te], y[te])
        fit_s += time.process_time() - t0
        if (p + 1) % 25 == 0 or p + 1 == partitions:
            tmp = out.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, T=T[:, : p + 1], done=p + 1, fit_seconds=fit_s,
                                candidates=json.dumps(cands))
            os.replace(tmp, out)
            print(f"{name}: {p + 1}/{partitions} partitions, {fit_s:.0f} CPU s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=500)
    ap.add_argument("--only", nargs="*", default=list(SETUPS))
    a = ap.parse_args()
    (HERE / "tables").mkdir(exist_ok=True)
    for name in a.only:
        table(name, a.partitions, HERE / "tables" / f"{name}.npz")


if __name__ == "__main__":
    main()
