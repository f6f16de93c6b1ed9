"""PGS(delta) and fits: RSSearchCV's procedures against scikit-learn's searches and Optuna's TPE.

Truth: each candidate's mean test score over the P*5 = 2,500 folds of tables/<name>.npz
(P = 500 shuffled 5-fold partitions; each fold is a random 80/20 split). Per
macroreplication m (M = 100):

- GridSearchCV(cv=<shuffled 5-fold m>): argmax of the table's partition m (the same numbers
  GridSearchCV computes; checked against a real GridSearchCV for m = 0 and 1);
- GridSearchCV with 5x repeated 5-fold: partitions 5m .. 5m+4 (disjoint across m);
- RandomizedSearchCV(n_iter=10) on the grid: 10 distinct candidates drawn with seed m,
  scored on partition m;
- Optuna TPE (10 trials, seed m) over the grid's parameters, scored on partition m;
- HalvingGridSearchCV(cv=<5-fold m>, factor=3): real fits (not tabular);
- RSSearchCV with KN, KT, P3C and OCBA at KN's mean budget: the engine's procedures on the
  table, replication r = fold column j(seed, r) drawn uniformly from the 2,500 under CRN (the
  same j for every candidate): i.i.d. 80/20 splits of the empirical split distribution,
  whose mean is exactly the truth. Fits = samples the procedure used.

A "real" check runs RSSearchCV (KN, test_size = 0.2) itself on the data for a few
macroreplications (wine, diabetes) to compare with the tabular emulation.

    nice -n 19 python studies/model_selection/run.py            # -> results/*.json, pgs_vs_fits.png
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numba
import numpy as np

import rands
from rands.problems.base import Problem, check_block
from rands.streams import stream_state, uniform_at
from rands.validation import wilson_interval

from setups import SETUPS, candidates, data, kfold

HERE = Path(__file__).resolve().parent
ALPHA = 0.05
N0 = 10


@numba.njit(cache=True)
def _table_block(flat, keys, systems, reps):
    out = np.empty(systems.shape[0])
    ncol = flat.shape[1]
    for n in range(systems.shape[0]):
        u = uniform_at(stream_state(keys[n], reps[n]), 0)
        out[n] = flat[systems[n], min(int(u * ncol), ncol - 1)]
    return out


class TableProblem(Problem):
    """Candidate i's sample at replication r = its score on fold column j(seed, r) of the table."""

    name = "score_table"

    def __init__(self, table: np.ndarray, label: str):
        self.flat = np.ascontiguousarray(table.reshape(table.shape[0], -1))
        self.k = self.flat.shape[0]
        self.true_means = self.flat.mean(axis=1)
        self._label = label

    def simulate(self, systems, reps, streams):
        systems, reps = check_block(systems, reps, self.k)
        return _table_block(self.flat, streams.keys(systems), systems, reps)

    def params(self):
        return {"table": self._label, "k": self.k}


def _summary(selected: np.ndarray, fits: np.ndarray, truth: np.ndarray, delta: float) -> dict:
    good = truth > truth.max() - delta * (1 - 1e-9)
    g = int(good[selected].sum())
    c = int((selected == int(np.argmax(truth))).sum())
    m = len(selected)
    return {"macroreps": m, "pgs": g / m, "pgs_ci": list(wilson_interval(g, m)), "pcs": c / m,
            "pcs_ci": list(wilson_interval(c, m)), "mean_fits": float(np.mean(fits)),
            "sd_fits": float(np.std(fits, ddof=1)) if m > 1 else 0.0,
            "selected_counts": np.bincount(selected, minlength=len(truth)).tolist()}


def _tpe(T: np.ndarray, cands: list[dict], grid: dict, m: int, n_trials: int) -> int:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    index = {json.dumps(c, sort_keys=True): i for i, c in enumerate(cands)}
    cv = T[:, m, :].mean(axis=1)

    def objective(trial):
        params = {key: trial.suggest_categorical(key, values) for key, values in grid.items()}
        return float(cv[index[json.dumps(params, sort_keys=True)]])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=m))
    study.optimize(objective, n_trials=n_trials)
    return index[json.dumps(study.best_params, sort_keys=True)]


def _halving(name: str, cands: list[dict], m: int) -> tuple[int, int]:
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV
    X, y = data(name)
    s = SETUPS[name]
    hs = HalvingGridSearchCV(s["estimator"](), s["grid"], cv=kfold(name, m), factor=3, scoring=s["scoring"],
                             random_state=m, refit=False, error_score="raise", **s.get("halving", {})).fit(X, y)
    index = {json.dumps(c, sort_keys=True): i for i, c in enumerate(cands)}
    fits = int(sum(hs.n_candidates_)) * 5
    return index[json.dumps(hs.best_params_, sort_keys=True)], fits


def _gridsearch_check(name: str, T: np.ndarray, m: int) -> bool:
    from sklearn.model_selection import GridSearchCV
    X, y = data(name)
    s = SETUPS[name]
    gs = GridSearchCV(s["estimator"](), s["grid"], cv=kfold(name, m), scoring=s["scoring"], refit=False).fit(X, y)
    return bool(gs.best_index_ == int(np.argmax(T[:, m, :].mean(axis=1)))
                and np.allclose(gs.cv_results_["mean_test_score"], T[:, m, :].mean(axis=1), rtol=1e-12))


def _real_rssearch(name: str, macroreps: int, truth: np.ndarray, delta: float) -> dict:
    from rands.model_selection import RSSearchCV
    X, y = data(name)
    s = SETUPS[name]
    cands = candidates(name)
    index = {json.dumps(c, sort_keys=True): i for i, c in enumerate(cands)}
    sel, fits, used = [], [], []
    t0 = time.process_time()
    for m in range(macroreps):
        rs = RSSearchCV(s["estimator"](), s["grid"], procedure="kn", alpha=ALPHA, delta=delta, n0=N0,
                        scoring=s["scoring"], test_size=0.2, refit=False, seed=(2026, m)).fit(X, y)
        sel.append(index[json.dumps(rs.best_params_, sort_keys=True)])
        fits.append(rs.n_fits_)
        used.append(rs.selection_.total_samples)
    out = _summary(np.array(sel), np.array(fits), truth, delta)
    out["mean_fits_used"] = float(np.mean(used))    # n_fits_ also counts the engine's look-ahead spares
    out["cpu_seconds"] = time.process_time() - t0
    return out


def _halving_runs(name: str, cands: list[dict], macroreps: int, stop_at: float) -> list:
    """(pick, fits) of HalvingGridSearchCV on partitions 0.. (real fits), cached per macroreplication
    in results/<name>_halving.json (rerun to resume); stops early once time.time() > stop_at."""
    path = HERE / "results" / f"{name}_halving.json"
    done = json.loads(path.read_text()) if path.exists() else []
    for m in range(len(done), macroreps):
        if time.time() > stop_at:
            print(f"{name}: HalvingGridSearchCV stopped at {m} macroreplications (--stop-at)", flush=True)
            break
        done.append(list(_halving(name, cands, m)))
        path.with_suffix(".tmp").write_text(json.dumps(done))
        os.replace(path.with_suffix(".tmp"), path)
    return done[:macroreps]


def run_dataset(name: str, macroreps: int, real: int, halving: bool, stop_at: float = float("inf")) -> dict:
    tab = np.load(HERE / "tables" / f"{name}.npz")
    T = tab["T"]
    k, P, _ = T.shape
    if P < 5 * macroreps:
        raise SystemExit(f"{name}: {P} partitions, need {5 * macroreps} for the 5x5 baseline")
    cands = candidates(name)
    delta = SETUPS[name]["delta"]
    truth = T.reshape(k, -1).mean(axis=1)
    prob = TableProblem(T, name)
    out: dict = {"dataset": name, "k": k, "delta": delta, "alpha": ALPHA, "n0": N0, "partitions": P,
                 "truth": truth.tolist(), "truth_se": (T.reshape(k, -1).std(axis=1, ddof=1)
                                                       / np.sqrt(T[0].size)).tolist(),
                 "n_good": int((truth > truth.max() - delta * (1 - 1e-9)).sum()),
                 "table_fit_cpu_seconds": float(tab["fit_seconds"]), "methods": {}}
    M = np.arange(macroreps)
    meth = out["methods"]
    meth["GridSearchCV 5-fold"] = _summary(np.array([np.argmax(T[:, m].mean(1)) for m in M]),
                                           np.full(macroreps, 5 * k), truth, delta)
    meth["GridSearchCV 5x5-fold"] = _summary(
        np.array([np.argmax(T[:, 5 * m:5 * m + 5].reshape(k, -1).mean(1)) for m in M]),
        np.full(macroreps, 25 * k), truth, delta)
    n_iter = k // 2
    sel = []
    for m in M:
        sub = np.random.default_rng([7, int(m)]).choice(k, n_iter, replace=False)
        sel.append(sub[np.argmax(T[sub, m].mean(1))])
    meth[f"RandomizedSearchCV n_iter={n_iter}"] = _summary(np.array(sel), np.full(macroreps, 5 * n_iter),
                                                           truth, delta)
    try:
        sel = [_tpe(T, cands, SETUPS[name]["grid"], int(m), n_iter) for m in M]
        meth[f"Optuna TPE {n_iter} trials"] = _summary(np.array(sel), np.full(macroreps, 5 * n_iter),
                                                       truth, delta)
    except ImportError:
        out["optuna"] = "not installed"
    if halving:
        res = _halving_runs(name, cands, macroreps, stop_at)
        meth["HalvingGridSearchCV factor=3"] = _summary(np.array([r[0] for r in res]),
                                                        np.array([r[1] for r in res]), truth, delta)
    procs = {"RSSearchCV KN": ("kn", dict(alpha=ALPHA, delta=delta, n0=N0, crn=True)),
             "RSSearchCV KT": ("kt", dict(alpha=ALPHA, delta=delta, n0=N0, g=5, n_groups=1, crn=True)),
             "RSSearchCV P3C": ("p3c", dict(alpha=ALPHA, delta=delta, n0=N0, n_clusters=4))}
    for label, (proc, params) in procs.items():
        runs = [rands.select(prob, proc, seed=(11, int(m)), **params) for m in M]
        meth[label] = _summary(np.array([r.best for r in runs]), np.array([r.total_samples for r in runs]),
                               truth, delta)
    budget = int(round(meth["RSSearchCV KN"]["mean_fits"]))
    runs = [rands.select(prob, "ocba", seed=(11, int(m)), budget=budget, n0=N0, increment=k, crn=True)
            for m in M]
    meth["RSSearchCV OCBA (KN's budget)"] = _summary(np.array([r.best for r in runs]),
                                                     np.array([r.total_samples for r in runs]), truth, delta)
    out["gridsearch_matches_table"] = [_gridsearch_check(name, T, m) for m in (0, 1)]
    if real:
        out["real_rssearch_kn"] = _real_rssearch(name, real, truth, delta)
    return out


#: the tight regime: a smaller indifference zone on the same tables (fewer good candidates)
TIGHT = {"wine": 0.002, "breast_cancer": 0.002, "digits": 0.002, "diabetes": 0.001, "diabetes_knn": 0.002}


def run_tight(name: str, macroreps: int) -> dict:
    """The same searches judged at delta = TIGHT[name]: the baselines' recorded picks are
    re-scored (no new fits); RSSearchCV's procedures run again with the smaller delta."""
    base = json.loads((HERE / "results" / f"{name}.json").read_text())
    T = np.load(HERE / "tables" / f"{name}.npz")["T"]
    k = T.shape[0]
    delta = TIGHT[name]
    truth = np.asarray(base["truth"])
    prob = TableProblem(T, name)
    out = dict(base, delta=delta, n_good=int((truth > truth.max() - delta * (1 - 1e-9)).sum()),
               methods={}, regime="tight")
    out.pop("real_rssearch_kn", None)
    for label, r in base["methods"].items():
        if label.startswith("RSSearchCV"):
            continue
        sel = np.repeat(np.arange(k), r["selected_counts"])
        fits = np.full(len(sel), r["mean_fits"])
        out["methods"][label] = _summary(sel, fits, truth, delta)
        out["methods"][label]["mean_fits"] = r["mean_fits"]
    M = np.arange(macroreps)
    procs = {"RSSearchCV KN": ("kn", dict(alpha=ALPHA, delta=delta, n0=N0, crn=True)),
             "RSSearchCV KT": ("kt", dict(alpha=ALPHA, delta=delta, n0=N0, g=5, n_groups=1, crn=True)),
             "RSSearchCV P3C": ("p3c", dict(alpha=ALPHA, delta=delta, n0=N0, n_clusters=4))}
    for label, (proc, params) in procs.items():
        runs = [rands.select(prob, proc, seed=(12, int(m)), **params) for m in M]
        out["methods"][label] = _summary(np.array([r.best for r in runs]),
                                         np.array([r.total_samples for r in runs]), truth, delta)
    budget = int(round(out["methods"]["RSSearchCV KN"]["mean_fits"]))
    runs = [rands.select(prob, "ocba", seed=(12, int(m)), budget=budget, n0=N0, increment=k, crn=True)
            for m in M]
    out["methods"]["RSSearchCV OCBA (KN's budget)"] = _summary(
        np.array([r.best for r in runs]), np.array([r.total_samples for r in runs]), truth, delta)
    return out


REPEATS = (1, 2, 5, 10, 20, 40, 80)


def repeated_curve(name: str, macroreps: int) -> dict:
    """GridSearchCV with R x repeated shuffled 5-fold, R in REPEATS, at both deltas: PGS vs fits.

    Macroreplication m draws R partitions uniformly (with replacement) from the table's P, as
    the emulated RSSearchCV draws fold columns: i.i.d. repeated-CV searches of the empirical
    split distribution whose mean is the truth. (GridSearchCV 5x5-fold above uses disjoint
    partitions 5m..5m+4 instead; at R = 5 the two agree within their CIs.)"""
    T = np.load(HERE / "tables" / f"{name}.npz")["T"]
    k, P, _ = T.shape
    truth = T.reshape(k, -1).mean(axis=1)
    picks = {R: np.array([np.argmax(T[:, np.random.default_rng([13, R, m]).integers(0, P, R)]
                                     .reshape(k, -1).mean(axis=1)) for m in range(macroreps)])
             for R in REPEATS}
    out = {"dataset": name, "k": k, "repeats": list(REPEATS), "fits": [5 * R * k for R in REPEATS]}
    for regime, delta in (("default", SETUPS[name]["delta"]), ("tight", TIGHT[name])):
        out[regime] = {"delta": delta, "rows": [_summary(picks[R], np.full(macroreps, 5 * R * k), truth, delta)
                                                for R in REPEATS]}
    return out


def plot(results: dict[str, dict], path: Path, curves: dict[str, dict] | None = None,
         regime: str = "default") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = (len(results) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4.5 * rows), squeeze=False)
    markers = dict(zip(["GridSearchCV 5-fold", "GridSearchCV 5x5-fold", "RandomizedSearchCV", "Optuna",
                        "HalvingGridSearchCV", "RSSearchCV KN", "RSSearchCV KT", "RSSearchCV P3C",
                        "RSSearchCV OCBA"], "osv^<DP*X"))
    for ax, (name, res) in zip(axes.ravel(), results.items()):
        for label, r in res["methods"].items():
            mk = next((v for key, v in markers.items() if label.startswith(key)), "o")
            lo, hi = r["pgs_ci"]
            ax.errorbar(r["mean_fits"], r["pgs"], yerr=[[r["pgs"] - lo], [hi - r["pgs"]]], fmt=mk,
                        capsize=3, label=label, color="C0" if label.startswith("RSSearchCV") else "C3",
                        mfc="none" if not label.startswith("RSSearchCV") else None)
        if "real_rssearch_kn" in res:
            r = res["real_rssearch_kn"]
            lo, hi = r["pgs_ci"]
            ax.errorbar(r["mean_fits"], r["pgs"], yerr=[[r["pgs"] - lo], [hi - r["pgs"]]], fmt="*",
                        color="C2", capsize=3, label=f"RSSearchCV KN, real fits ({r['macroreps']} reps)")
        if curves and name in curves:
            c = curves[name]
            rows = c[regime]["rows"]
            ax.plot(c["fits"], [r["pgs"] for r in rows], ":", color="C3", lw=1,
                    label=f"GridSearchCV Rx5-fold, R={c['repeats'][0]}..{c['repeats'][-1]}")
            ax.fill_between(c["fits"], [r["pgs_ci"][0] for r in rows], [r["pgs_ci"][1] for r in rows],
                            color="C3", alpha=0.1)
        ax.axhline(1 - ALPHA, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{name}: k={res['k']}, delta={res['delta']}, {res['n_good']} good candidates")
        ax.set_xlabel("fits per search")
        ax.set_ylabel("PGS (Wilson 95%)")
        ax.legend(fontsize=6.5, loc="lower right")
    for ax in axes.ravel()[len(results):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--macroreps", type=int, default=100)
    ap.add_argument("--real", type=int, default=20, help="real RSSearchCV macroreps on wine/diabetes")
    ap.add_argument("--only", nargs="*", default=list(SETUPS))
    ap.add_argument("--no-halving", action="store_true")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--stop-at", type=float, default=float("inf"),
                    help="unix time after which HalvingGridSearchCV stops adding macroreplications")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    (HERE / "results").mkdir(exist_ok=True)
    for name in a.only:
        path = HERE / "results" / f"{name}.json"
        t0 = time.time()
        if path.exists() and not a.force:
            t0 = None
        if t0 is not None:
            res = run_dataset(name, a.macroreps, a.real if name in ("wine", "diabetes") else 0,
                              not a.no_halving, a.stop_at)
            res["wall_seconds"] = time.time() - t0
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(res, indent=1))
            os.replace(tmp, path)
            print(f"{name}: done in {res['wall_seconds']:.0f} s", flush=True)
        tight = HERE / "results" / f"{name}_tight.json"
        if not tight.exists() or a.force:
            res = run_tight(name, a.macroreps)
            tight.with_suffix(".tmp").write_text(json.dumps(res, indent=1))
            os.replace(tight.with_suffix(".tmp"), tight)
            print(f"{name}: tight regime done", flush=True)
    curves = {}
    for name in SETUPS:
        path = HERE / "results" / f"{name}_curve.json"
        if (HERE / "tables" / f"{name}.npz").exists() and (not path.exists() or a.force):
            path.write_text(json.dumps(repeated_curve(name, a.macroreps), indent=1))
        if path.exists():
            curves[name] = json.loads(path.read_text())
    for suffix, png, regime in (("", "pgs_vs_fits.png", "default"), ("_tight", "pgs_vs_fits_tight.png", "tight")):
        done = {n: json.loads((HERE / "results" / f"{n}{suffix}.json").read_text()) for n in SETUPS
                if (HERE / "results" / f"{n}{suffix}.json").exists()}
        if done:
            plot(done, HERE / png, curves, regime)


if __name__ == "__main__":
    main()
