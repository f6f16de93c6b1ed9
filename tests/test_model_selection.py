"""rands.model_selection.RSSearchCV and rands.problems.from_estimator.

scikit-learn conventions (clone, get/set_params, Pipeline, nested CV), CRN splits, bad
inputs, error_score, PGS >= 1-alpha on a known-truth case (Wilson), and the same
best_params_/cv_results_ on serial, 2 processes and mpiexec -n 2.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone, is_classifier
from sklearn.datasets import load_iris
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import rands
from rands.errors import ParameterError, SimulationError
from rands.model_selection import RSSearchCV
from rands.problems import from_estimator
from rands.streams import Streams

HAVE_MPI = shutil.which("mpiexec") is not None
try:
    import importlib.util
    HAVE_MPI = HAVE_MPI and importlib.util.find_spec("mpi4py") is not None
except ImportError:  # pragma: no cover
    HAVE_MPI = False

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
KNN_GRID = {"n_neighbors": [1, 3, 7, 15, 30, 60]}


def _search(**kw):
    base = dict(delta=0.02, n0=5, seed=3)
    base.update(kw)
    return RSSearchCV(KNeighborsClassifier(), KNN_GRID, **base)


# ---------------------------------------------------------------------------- scikit-learn shape


def test_fit_attributes_and_cv_results():
    s = _search().fit(X_IRIS, Y_IRIS)
    r = s.cv_results_
    k = len(r["params"])
    assert k == 6 and s.n_candidates_ == 6
    assert s.best_params_ == r["params"][s.best_index_]
    assert r["rank_test_score"][s.best_index_] == 1 and sorted(r["rank_test_score"]) == list(range(1, 7))
    assert r["status"][s.best_index_] == "selected"
    assert s.n_fits_ >= int(r["n_replications"].sum()) == s.selection_.total_samples   # + look-ahead
    assert np.array_equal(r["n_replications"], s.selection_.sample_sizes)
    assert np.allclose(r["mean_test_score"], s.selection_.means, rtol=1e-12, atol=0)
    assert np.all(r["std_test_score"] >= 0) and np.all(np.isfinite(r["std_test_score"]))
    assert list(r["param_n_neighbors"]) == KNN_GRID["n_neighbors"]
    elim = r["status"] == "eliminated"
    assert np.array_equal(r["eliminated_at"][elim], r["n_replications"][elim])
    assert r["eliminated_at"][s.best_index_] == -1
    assert s.best_score_ == pytest.approx(r["mean_test_score"][s.best_index_])
    assert s.predict(X_IRIS).shape == (150,) and s.predict_proba(X_IRIS).shape == (150, 3)
    assert list(s.classes_) == [0, 1, 2] and s.n_features_in_ == 4
    assert 0.0 <= s.score(X_IRIS, Y_IRIS) <= 1.0
    assert "PCS >= 1-alpha" in s.guarantee_
    assert s.best_params_["n_neighbors"] != 60        # 60 of 3 classes x 37 train samples: clearly worse
    again = _search().fit(X_IRIS, Y_IRIS)
    assert again.best_params_ == s.best_params_
    assert np.array_equal(again.cv_results_["n_replications"], r["n_replications"])
    assert np.array_equal(again.cv_results_["mean_test_score"], r["mean_test_score"])
    assert np.array_equal(again.cv_results_["std_test_score"], r["std_test_score"])


def test_clone_get_set_params_keep_procedure_params():
    s = RSSearchCV(Pipeline([("sc", StandardScaler()), ("svc", SVC())]), {"svc__C": [0.1, 1.0]},
                   procedure="kt", g=2, n_groups=1, delta=0.05)
    p = s.get_params()
    assert p["g"] == 2 and p["n_groups"] == 1 and p["estimator__svc__C"] == 1.0
    c = clone(s)
    assert c is not s and c.get_params(deep=False)["g"] == 2
    assert c.estimator is not s.estimator
    c.set_params(g=3, delta=0.1, estimator__svc__kernel="linear")
    assert c.g == 3 and c.delta == 0.1 and c.estimator.named_steps["svc"].kernel == "linear"
    assert s.g == 2 and s.estimator.named_steps["svc"].kernel == "rbf"
    with pytest.raises(ValueError, match="Invalid parameter"):
        c.set_params(not_a_param=1)
    assert "g=2" in repr(s)


def test_inside_pipeline_and_nested_cross_val_score():
    pipe = Pipeline([("scale", StandardScaler()), ("search", _search(refit=True))])
    pipe.fit(X_IRIS, Y_IRIS)
    assert pipe.predict(X_IRIS).shape == (150,)
    assert is_classifier(_search())
    scores = cross_val_score(_search(), X_IRIS, Y_IRIS, cv=3)
    assert scores.shape == (3,) and np.all((scores > 0.8) & (scores <= 1.0))


def test_random_candidates_from_distributions():
    from scipy.stats import randint
    s = RSSearchCV(KNeighborsClassifier(), param_distributions={"n_neighbors": randint(1, 40)},
                   n_candidates=5, delta=0.02, n0=5, seed=11).fit(X_IRIS, Y_IRIS)
    t = RSSearchCV(KNeighborsClassifier(), param_distributions={"n_neighbors": randint(1, 40)},
                   n_candidates=5, delta=0.02, n0=5, seed=11).fit(X_IRIS, Y_IRIS)
    assert len(s.cv_results_["params"]) == 5 and s.cv_results_["params"] == t.cv_results_["params"]
    assert s.best_params_ == t.best_params_


# ---------------------------------------------------------------------------- replications


def test_crn_same_split_for_every_candidate_and_independent_without_crn():
    prob = from_estimator(SVC(), [{"C": 0.1}, {"C": 1.0}, {"C": 10.0}], X_IRIS, Y_IRIS)
    crn = Streams(5, crn=True)
    tr = [prob.replication(i, 4, crn) for i in range(3)]
    assert all(np.array_equal(t[0], tr[0][0]) and np.array_equal(t[1], tr[0][1]) and t[2] == tr[0][2]
               for t in tr)
    assert not np.array_equal(prob.replication(0, 5, crn)[1], tr[0][1])     # replications differ
    ind = Streams(5, crn=False)
    assert not np.array_equal(prob.replication(0, 4, ind)[1], prob.replication(1, 4, ind)[1])
    train, test, _ = tr[0]
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 150
    assert len(test) == 38 and np.abs(np.bincount(Y_IRIS[test]) - 38 / 3).max() < 1   # stratified


def test_random_state_set_per_replication_and_groups_respected():
    from sklearn.ensemble import RandomForestClassifier
    prob = from_estimator(RandomForestClassifier(n_estimators=3), [{"max_depth": 2}, {"max_depth": 3}],
                          X_IRIS, Y_IRIS)
    st = Streams(1, crn=True)
    seeds = {prob.replication(0, r, st)[2] for r in range(5)}
    assert len(seeds) == 5
    est = prob.candidate_estimator(0, 123)
    assert est.random_state == 123 and est.max_depth == 2
    groups = np.repeat(np.arange(30), 5)
    gp = from_estimator(SVC(), [{"C": 1.0}, {"C": 2.0}], X_IRIS, Y_IRIS, groups=groups)
    for r in range(4):
        train, test, _ = gp.replication(0, r, st)
        assert not set(groups[train]) & set(groups[test])
    sp = from_estimator(SVC(), [{"C": 1.0}, {"C": 2.0}], X_IRIS, Y_IRIS,
                        splitter=GroupShuffleSplit(test_size=0.5), groups=groups)
    assert len(sp.replication(0, 0, st)[1]) == 75


class _Weighted(RegressorMixin, BaseEstimator):
    """Records the sample weights its fit saw (checks that fit params are split with X)."""

    def __init__(self, c=1.0):
        self.c = c

    def fit(self, X, y, sample_weight=None):
        self.seen_ = np.asarray(sample_weight)
        return self

    def predict(self, X):
        return np.zeros(len(X))


def test_fit_params_are_split_with_the_data():
    w = np.arange(150, dtype=float)
    prob = from_estimator(_Weighted(), [{"c": 1.0}, {"c": 2.0}], X_IRIS, Y_IRIS.astype(float),
                          fit_params={"sample_weight": w}, scoring=lambda est, X, y: float(est.seen_.sum()))
    st = Streams(0, crn=True)
    train, _, _ = prob.replication(0, 0, st)
    assert prob.simulate(np.array([0]), np.array([0]), st)[0] == pytest.approx(w[train].sum())


# ---------------------------------------------------------------------------- bad input


class _NoFit:
    def get_params(self, deep=True):
        return {}


class _Fails(RegressorMixin, BaseEstimator):
    def __init__(self, c=1.0):
        self.c = c

    def fit(self, X, y):
        if self.c < 0:
            raise ValueError("c must be >= 0")
        self.m_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.m_ + self.c)


@pytest.mark.parametrize("kwargs, match", [
    (dict(estimator=_NoFit(), param_grid={"a": [1, 2]}), "estimator must be a scikit-learn estimator"),
    (dict(estimator=SVC, param_grid={"C": [1, 2]}), "estimator must be a scikit-learn estimator"),
    (dict(param_grid={}), "param_grid is empty"),
    (dict(param_grid=[]), "param_grid is empty"),
    (dict(param_grid={"n_neighbors": []}), "param_grid is not valid.*non-empty"),
    (dict(param_grid={"n_neighbors": [3]}), "at least 2 candidates"),
    (dict(param_grid={"n_neighbors": 3}), "param_grid is not valid"),
    (dict(param_grid=None), "exactly one of param_grid and param_distributions"),
    (dict(scoring="accuracyy"), "scoring='accuracyy' is not valid"),
    (dict(delta=0.0), "delta must be a positive number"),
    (dict(delta=-0.1), "delta must be a positive number"),
    (dict(alpha=1.5), "alpha must be in"),
    (dict(n0=5, max_replications=4), "max_replications=4 is below n0=5"),
    (dict(procedure="nope"), "unknown procedure 'nope'"),
    (dict(procedure="kn", g=3), "unknown parameter"),
    (dict(backend="threads"), "backend must be one of"),
    (dict(error_score="ignore"), "error_score must be 'raise' or a finite number"),
    (dict(error_score=float("nan")), "error_score must be 'raise' or a finite number"),
    (dict(splitter=ShuffleSplit), "splitter must be a randomized splitter"),
])
def test_bad_input_is_refused_before_any_fit(kwargs, match):
    base = dict(estimator=KNeighborsClassifier(), param_grid=KNN_GRID, delta=0.02, n0=5)
    base.update(kwargs)
    est = base.pop("estimator")
    grid = base.pop("param_grid")
    with pytest.raises(ParameterError, match=match):
        RSSearchCV(est, grid, **base).fit(X_IRIS, Y_IRIS)


def test_failing_fit_raises_naming_the_parameters():
    y = Y_IRIS.astype(float)
    s = RSSearchCV(_Fails(), {"c": [0.0, -1.0, 0.5]}, delta=0.05, n0=4, scoring="neg_mean_squared_error")
    with pytest.raises(SimulationError, match=r"\{'c': -1\.0\}.*c must be >= 0"):
        s.fit(X_IRIS, y)


def test_numeric_error_score_records_failure_and_never_selects_it():
    y = Y_IRIS.astype(float)
    s = RSSearchCV(_Fails(), {"c": [0.3, -1.0, 0.0, 1.0]}, delta=0.05, n0=4, error_score=10.0,
                   scoring="neg_mean_squared_error", seed=2).fit(X_IRIS, y)
    r = s.cv_results_
    assert r["status"][1] == "failed" and r["n_replications"][1] == 0 and np.isnan(r["mean_test_score"][1])
    assert s.best_index_ == 2 and s.best_params_ == {"c": 0.0}      # error_score 10 > any real score
    assert r["rank_test_score"][1] == 4
    # the probe's split-0 fits are the selection's replication 0: no fit is done twice
    ref = RSSearchCV(_Fails(), {"c": [0.3, 0.0, 1.0]}, delta=0.05, n0=4,
                     scoring="neg_mean_squared_error", seed=2).fit(X_IRIS, y)
    assert ref.best_params_ == s.best_params_
    with pytest.raises(ParameterError, match="fewer than 2 remain"):
        RSSearchCV(_Fails(), {"c": [-2.0, -1.0, 0.0]}, delta=0.05, n0=4, error_score=0.0,
                   scoring="neg_mean_squared_error").fit(X_IRIS, y)


def test_max_replications_cap_raises_when_reached():
    s = RSSearchCV(_Fails(), {"c": [0.0, 0.0001]}, delta=1e-6, n0=4, max_replications=6,
                   scoring="neg_mean_squared_error")
    with pytest.raises(SimulationError, match="beyond max_replications=6"):
        s.fit(X_IRIS, Y_IRIS.astype(float))


def test_splitter_that_cannot_split_is_bad_input():
    y = np.array([0] * 149 + [1])           # one member of class 1: no stratified split
    with pytest.raises(ParameterError, match="cannot split this data"):
        from_estimator(SVC(), [{"C": 1.0}, {"C": 2.0}], X_IRIS, y)


# ---------------------------------------------------------------------------- other procedures


@pytest.mark.parametrize("procedure, extra", [("p3c", dict(n_clusters=2)), ("kt", dict(g=3)),
                                              ("ocba", dict(budget=120, increment=12))])
def test_other_procedures_and_recorded_std(procedure, extra):
    s = _search(procedure=procedure, **extra).fit(X_IRIS, Y_IRIS)
    r = s.cv_results_
    assert s.n_fits_ >= s.selection_.total_samples == int(r["n_replications"].sum())
    assert np.all(np.isfinite(r["std_test_score"]))
    if procedure == "ocba":
        assert s.n_fits_ == 120 and set(r["status"]) <= {"selected", "not selected"}


# ---------------------------------------------------------------------------- guarantee


class _Synthetic(RegressorMixin, BaseEstimator):
    """Score on a test set = mu + mean of column ``col`` of X_test + a seed-dependent offset.

    Over uniformly random test subsets its expected score is mu + mean(X[:, col]) exactly
    (the offset has mean 0): a known truth for PGS.
    """

    def __init__(self, mu=0.0, col=0, random_state=None):
        self.mu = mu
        self.col = col
        self.random_state = random_state

    def fit(self, X, y=None):
        self.offset_ = 0.05 * np.random.RandomState(self.random_state).standard_normal()
        return self

    def predict(self, X):
        return np.zeros(len(X))


def _synthetic_score(est, X, y):
    return float(est.mu + X[:, est.col].mean() + est.offset_)


def test_pgs_at_least_one_minus_alpha_on_known_truth():
    k, delta, macroreps = 5, 0.1, 300
    X = np.random.default_rng(0).standard_normal((400, k))
    target = np.r_[delta, np.zeros(k - 1)]                    # slippage: best by delta
    mu = target - X.mean(axis=0)
    cands = [{"mu": float(mu[i]), "col": i} for i in range(k)]
    prob = from_estimator(_Synthetic(), cands, X, scoring=_synthetic_score, true_means=target)
    v = rands.validate(prob, "kn", macroreps=macroreps, seed=4, alpha=0.05, delta=delta, n0=10, crn=True)
    assert v.pgs_ci[1] >= 0.95, v.row()
    # control: the best of one split per candidate is far below 1 - alpha on this case
    st = [Streams((9, m), crn=True) for m in range(macroreps)]
    one = np.array([np.argmax(prob.simulate(np.arange(k), np.zeros(k, dtype=np.int64), s)) for s in st])
    assert rands.validation.wilson_interval(int((one == 0).sum()), macroreps)[1] < 0.95


# ---------------------------------------------------------------------------- backends


def _record(s) -> dict:
    """What must agree across backends. n_fits_ may not: the engine's look-ahead simulates a
    few spare samples, as many as the backend's block sizes make it (unused, never counted)."""
    r = s.cv_results_
    return {"best_params": s.best_params_, "mean": r["mean_test_score"].tolist(),
            "std": r["std_test_score"].tolist(), "n": r["n_replications"].tolist(),
            "status": list(r["status"]), "used": s.selection_.total_samples}


def _same(a: dict, b: dict, procedure: str = "kn") -> bool:
    """Equal records: bit-identical where every score passes through the coordinator (KN);
    for P3C, whose groups report only sums (added in an order the engine does not fix), means
    to 1e-12 and sds to 1e-9."""
    if procedure == "kn":
        return a == b
    exact = all(a[key] == b[key] for key in ("best_params", "n", "status", "used"))
    return (exact and np.allclose(a["mean"], b["mean"], rtol=1e-12, atol=0)
            and np.allclose(a["std"], b["std"], rtol=1e-9, atol=0))


def _env() -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["NUMBA_NUM_THREADS"] = "1"
    env.setdefault("HYDRA_IFACE", "lo")
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    return env


_MPI_SCRIPT = textwrap.dedent("""
    import json, sys
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier
    from rands.model_selection import RSSearchCV
    from rands.parallel import make_executor
    ex = make_executor("mpi")
    if ex is None:
        sys.exit(0)
    X, y = load_iris(return_X_y=True)
    out = {}
    for proc, extra in (("kn", {}), ("p3c", {"n_clusters": 2})):
        s = RSSearchCV(KNeighborsClassifier(), {"n_neighbors": [1, 3, 7, 15, 30, 60]}, delta=0.02,
                       n0=5, seed=3, procedure=proc, backend=ex, **extra).fit(X, y)
        r = s.cv_results_
        out[proc] = {"best_params": s.best_params_, "mean": r["mean_test_score"].tolist(),
                     "std": r["std_test_score"].tolist(), "n": r["n_replications"].tolist(),
                     "status": list(r["status"]), "used": s.selection_.total_samples}
    ex.close()
    json.dump({"workers": ex.n_workers, "results": out}, open(sys.argv[1], "w"))
""")


@pytest.fixture(scope="module")
def serial_records():
    return {proc: _record(_search(procedure=proc, **extra).fit(X_IRIS, Y_IRIS))
            for proc, extra in (("kn", {}), ("p3c", {"n_clusters": 2}))}


def test_same_result_on_two_processes(serial_records):
    from rands.parallel import make_executor
    ex = make_executor("processes", 2)
    try:
        for proc, extra in (("kn", {}), ("p3c", {"n_clusters": 2})):
            s = _search(procedure=proc, backend=ex, **extra)
            assert clone(s).backend is ex          # a live executor is shared by clone, not copied
            assert _same(_record(s.fit(X_IRIS, Y_IRIS)), serial_records[proc], proc), proc
    finally:
        ex.close()


@pytest.mark.skipif(not HAVE_MPI, reason="needs mpiexec and mpi4py")
@pytest.mark.mpi
def test_same_result_under_mpiexec_2(tmp_path, serial_records):
    script = tmp_path / "ms_mpi.py"
    script.write_text(_MPI_SCRIPT)
    out = tmp_path / "out.json"
    proc = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(script), str(out)],
                          capture_output=True, text=True, timeout=180, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["workers"] == 2
    for name, rec in serial_records.items():
        assert _same(data["results"][name], rec, name), name


# ---------------------------------------------------------------------------- config form


def test_sklearn_problem_by_name_and_allow_list():
    prob = rands.problems.make("sklearn", estimator="sklearn.neighbors.KNeighborsClassifier",
                               param_grid={"n_neighbors": [1, 5, 25]}, dataset="iris",
                               estimator_params={"weights": "distance"}, scoring="accuracy")
    assert prob.k == 3 and prob.estimator.weights == "distance"
    assert prob.spec()["name"] == "sklearn" and prob.spec()["dataset"] == "iris"
    res = rands.select(prob, "kn", seed=1, alpha=0.05, delta=0.02, n0=5, crn=True)
    assert res.total_samples >= 15 and res.best_label.startswith("{")
    for bad, match in [("os.system", "not from an allowed module"),
                       ("sklearn.model_selection.GridSearchCV", "not from an allowed module"),
                       ("sklearn.svm.NotAClass", "is not a scikit-learn estimator class"),
                       ("sklearn.svm._base", "private"), ("SVC", "dotted class name")]:
        with pytest.raises(ParameterError, match=match):
            rands.problems.make("sklearn", estimator=bad, param_grid={"C": [1, 2]}, dataset="iris")
    with pytest.raises(ParameterError, match="dataset must be"):
        rands.problems.make("sklearn", estimator="sklearn.svm.SVC", param_grid={"C": [1, 2]},
                            dataset="/etc/passwd")


def test_rands_run_config(tmp_path):
    cfg = tmp_path / "ms.toml"
    cfg.write_text(textwrap.dedent("""
        [problem]
        name = "sklearn"
        estimator = "sklearn.neighbors.KNeighborsClassifier"
        dataset = "iris"
        param_grid = { n_neighbors = [1, 5, 25, 60] }

        [procedure]
        name = "kn"
        alpha = 0.05
        delta = 0.02
        n0 = 5
        crn = true

        [run]
        seed = 2
    """))
    proc = subprocess.run([sys.executable, "-m", "rands", "run", str(cfg), "--json"], capture_output=True,
                          text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(proc.stdout)
    direct = rands.select(rands.problems.make("sklearn", estimator="sklearn.neighbors.KNeighborsClassifier",
                                              dataset="iris", param_grid={"n_neighbors": [1, 5, 25, 60]}),
                          "kn", seed=2, alpha=0.05, delta=0.02, n0=5, crn=True)
    assert rec["best"] == direct.best and rec["sample_sizes"] == direct.sample_sizes.tolist()
