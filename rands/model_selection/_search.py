"""RSSearchCV: hyperparameter search as ranking and selection, in scikit-learn's shape."""
from __future__ import annotations

import math
import numbers
import time
from copy import deepcopy
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if

from ..errors import ParameterError, check_int
from ..problems.estimator import EstimatorProblem, check_estimator_like, check_error_score
from ..streams import Streams

__all__ = ["RSSearchCV"]

_BACKENDS = ("serial", "processes")


def _delegates(method: str):
    """available_if check: the refitted estimator (or, before fit, the estimator) has ``method``."""
    def check(self) -> bool:
        est = getattr(self, "best_estimator_", None)
        return hasattr(est if est is not None else self.estimator, method)
    return check


class RSSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Select hyperparameters with a ranking-and-selection procedure over random splits.

    Each candidate parameter setting is a system; replication r is one random train/test split
    of (X, y) (stratified for classifiers, group-aware when ``groups`` are passed to ``fit``)
    plus the estimator's ``random_state``, both derived from (seed, r) by the engine's streams,
    so every candidate sees the same split r (common random numbers, ``crn=True`` for KN, KT,
    OCBA; P3C always uses CRN and clusters candidates by the correlation of their scores
    across splits). The procedure decides how many splits each candidate gets.

    Guarantee (what it is about): for the candidate with the largest *expected score over
    random splits of this data set* (train size ``1 - test_size`` of it), the selected one is
    within ``delta`` of it with probability >= 1 - alpha (PGS; PCS under the indifference
    zone) under the procedure's assumptions (KN/KT: approximately normal split scores; see
    ``rands procedures``). Fixed-budget procedures (OCBA) give no finite-budget guarantee.
    It says nothing about generalization to new data beyond this data set.

    Parameters
    ----------
    estimator : unfitted scikit-learn estimator (or Pipeline).
    param_grid : dict or list of dicts, as ``GridSearchCV`` takes; or
    param_distributions : as ``RandomizedSearchCV`` takes, with ``n_candidates`` draws
        (default 20) sampled from ``seed``.
    procedure : registered procedure name: "kn" (default), "kt", "p3c", "ocba", "rinott", ...
    alpha, delta, n0 : error probability, indifference zone (score units, > 0), first-stage
        splits per candidate; passed to the procedure where it takes them.
    max_replications : cap on splits per candidate (None: none); asking for more raises.
    scoring : None, a scorer name or a callable, as ``sklearn.metrics.check_scoring``;
        larger is better.
    splitter : None or a randomized splitter with ``random_state`` (its first split is used);
        ``test_size`` is the test fraction of the default splitters.
    refit : refit the selected candidate on all of (X, y).
    backend : "serial", "processes" (local processes, closed after fit) or an executor from
        ``rands.parallel.make_executor`` (processes or MPI; the caller closes it).
    seed : int or sequence of ints; the same seed gives the same selection on any backend.
    error_score : "raise" or a finite number. With a number every candidate is first fitted
        on split 0 (a sample the procedure reuses); candidates that fail there are recorded as
        "failed" in ``cv_results_`` and never selected; a later failure scores error_score.
    progress : show a tqdm progress bar over fits (or a callable(total_fits)).
    **procedure_params : further parameters of the procedure (e.g. ``g``, ``n_groups`` for
        KT, ``n_clusters`` for P3C, ``budget`` for OCBA).

    Attributes
    ----------
    best_index_, best_params_, best_score_ (the selected candidate's mean split score; biased
    upward by selection), best_estimator_ (if refit), cv_results_ (dict of arrays: params,
    param_<name>, mean_test_score, std_test_score, n_replications, rank_test_score, status,
    eliminated_at), n_fits_ (fits performed, refit excluded: the replications used plus the
    few spare ones the engine's look-ahead may simulate for cheap fits; pass ``lookahead=1``
    to KN/KT to draw one stage at a time), selection_ (the engine's SelectionResult; its
    ``total_samples`` are the replications used), guarantee_, scorer_, refit_time_,
    n_features_in_, classes_.

    cv_results_ columns: ``n_replications`` (splits the procedure used), ``status``
    ("selected", "eliminated", "not selected" for fixed-budget procedures, "failed"),
    ``eliminated_at`` (the replication count at which an eliminated candidate stopped, -1
    otherwise), ``rank_test_score`` (1 for the selected candidate, then by mean; failed last).
    Means and standard deviations (ddof=0) are over each candidate's used splits in split
    order, the same numbers on every backend.

    Kim & Nelson (2001) ACM TOMACS 11(3); Zhong & Hong (2022) Oper. Res. (KT); Zhang & Peng
    (2024) arXiv 2402.02196 (P3C); Chen et al. (2000) DEDS 10 (OCBA).
    """

    def __init__(self, estimator, param_grid=None, *, param_distributions=None, n_candidates=None,
                 procedure: str = "kn", alpha: float = 0.05, delta: float = 0.01, n0: int = 10,
                 max_replications: int | None = None, scoring=None, splitter=None,
                 test_size: float = 0.25, refit: bool = True, backend="serial", seed=0,
                 error_score="raise", progress=False, **procedure_params):
        self.estimator = estimator
        self.param_grid = param_grid
        self.param_distributions = param_distributions
        self.n_candidates = n_candidates
        self.procedure = procedure
        self.alpha = alpha
        self.delta = delta
        self.n0 = n0
        self.max_replications = max_replications
        self.scoring = scoring
        self.splitter = splitter
        self.test_size = test_size
        self.refit = refit
        self.backend = backend
        self.seed = seed
        self.error_score = error_score
        self.progress = progress
        for key, value in procedure_params.items():
            setattr(self, key, value)

    # ------------------------------------------------------------ scikit-learn protocol
    @property
    def _procedure_param_names(self) -> tuple[str, ...]:
        """The **procedure_params given to __init__: public attributes that are not named
        parameters and not fitted attributes (no trailing underscore)."""
        named = set(self._get_param_names())
        return tuple(sorted(key for key in vars(self)
                            if key not in named and not key.startswith("_") and not key.endswith("_")))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        out = super().get_params(deep=deep)
        for key in self._procedure_param_names:
            out[key] = getattr(self, key)
        return out

    def set_params(self, **params):
        extra = self._procedure_param_names
        for key in list(params):
            if key in extra:
                setattr(self, key, params.pop(key))
        return super().set_params(**params)

    def __sklearn_clone__(self):
        # the backend may be a live executor (process pool, MPI communicator): shared, not copied
        params = self.get_params(deep=False)
        backend = params.pop("backend")
        return type(self)(backend=backend, **{k: clone(v, safe=False) for k, v in params.items()})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = deepcopy(sub.classifier_tags)
        tags.regressor_tags = deepcopy(sub.regressor_tags)
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = sub.input_tags.sparse
        return tags

    # ------------------------------------------------------------ validation
    def _candidates(self) -> list[dict]:
        grid, dists = self.param_grid, self.param_distributions
        if (grid is None) == (dists is None):
            raise ParameterError("give exactly one of param_grid and param_distributions")
        if grid is not None:
            if isinstance(grid, dict) and not grid or isinstance(grid, (list, tuple)) and not grid:
                raise ParameterError(f"param_grid is empty ({grid!r}); give parameter names with lists "
                                     f"of values")
            try:
                cands = list(ParameterGrid(grid))
            except (TypeError, ValueError) as exc:
                raise ParameterError(f"param_grid is not valid: {exc}") from None
            if self.n_candidates is not None:
                raise ParameterError("n_candidates applies to param_distributions, not to param_grid")
        else:
            n = 20 if self.n_candidates is None else check_int("n_candidates", self.n_candidates, low=2)
            if isinstance(dists, dict) and not dists:
                raise ParameterError("param_distributions is empty")
            seed_int = int(np.random.SeedSequence(Streams(self.seed).seed).generate_state(1)[0])
            try:
                cands = list(ParameterSampler(dists, n, random_state=seed_int))
            except (TypeError, ValueError) as exc:
                raise ParameterError(f"param_distributions is not valid: {exc}") from None
        if len(cands) < 2:
            raise ParameterError(f"the search needs at least 2 candidates, param_grid gives {len(cands)}")
        return cands

    def _make_procedure(self):
        from .. import procedures
        if not isinstance(self.procedure, str):
            raise ParameterError(f"procedure must be a procedure name ({', '.join(procedures.names(False))}), "
                                 f"got {self.procedure!r}")
        cls = procedures.procedure_class(self.procedure)
        valid = set(cls._param_names())
        if isinstance(self.delta, bool) or not isinstance(self.delta, numbers.Real) or not self.delta > 0:
            raise ParameterError(f"delta must be a positive number (indifference zone in score units), "
                                 f"got {self.delta!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real) or not 0 < self.alpha < 1:
            raise ParameterError(f"alpha must be in (0, 1), got {self.alpha!r}")
        n0 = check_int("n0", self.n0, low=2)
        if self.max_replications is not None:
            cap = check_int("max_replications", self.max_replications, low=1)
            if cap < n0:
                raise ParameterError(f"max_replications={cap} is below n0={n0}; it must be >= n0")
        params = {"alpha": float(self.alpha), "delta": float(self.delta), "n0": n0}
        params = {k: v for k, v in params.items() if k in valid}
        if "crn" in valid and cls.supports_crn:
            params["crn"] = True
        params.update({k: getattr(self, k) for k in self._procedure_param_names})
        return procedures.make(self.procedure, **params)

    def _executor(self):
        if isinstance(self.backend, str):
            if self.backend not in _BACKENDS:
                raise ParameterError(f"backend must be one of {', '.join(_BACKENDS)} or an executor from "
                                     f"rands.parallel.make_executor, got {self.backend!r}")
            if self.backend == "serial":
                return None, False
            from rands.parallel import make_executor
            return make_executor("processes"), True
        if not (hasattr(self.backend, "simulate") and hasattr(self.backend, "bind")):
            raise ParameterError(f"backend must be one of {', '.join(_BACKENDS)} or an executor from "
                                 f"rands.parallel.make_executor, got {self.backend!r}")
        return self.backend, False

    # ------------------------------------------------------------ fit
    def fit(self, X, y=None, *, groups=None, **fit_params):
        """Run the selection over random splits of (X, y); refit the selected candidate."""
        import rands
        check_estimator_like(self.estimator)
        cands = self._candidates()
        proc = self._make_procedure()
        error_score = check_error_score(self.error_score)
        if not isinstance(self.refit, (bool, np.bool_)):
            raise ParameterError(f"refit must be True or False, got {self.refit!r}")
        problem = EstimatorProblem(self.estimator, cands, X, y, groups=groups, scoring=self.scoring,
                                   splitter=self.splitter, test_size=self.test_size,
                                   error_score=error_score, fit_params=fit_params)
        problem.max_replications = self.max_replications
        proc.check_problem(problem)
        executor, owned = self._executor()
        streams = Streams(self.seed, crn=proc.crn_enabled)
        k = len(cands)
        failed = np.zeros(k, dtype=bool)
        try:
            alive = np.arange(k)
            run_problem = problem
            if error_score != "raise":
                probe = self._probe(problem, streams, executor)
                failed = ~np.isfinite(probe)
                alive = np.flatnonzero(~failed)
                if alive.size < 2:
                    raise ParameterError(f"{int(failed.sum())} of {k} candidates failed to fit on the first "
                                         f"split; fewer than 2 remain to select among")
                memo = {(int(i), 0): float(probe[i]) for i in alive}
                run_problem = problem.subset(alive, memo)
                proc.check_problem(run_problem)
            recorder = _Recorder(executor, k, alive)
            res = rands.select(run_problem, proc, seed=self.seed, executor=recorder,
                               progress=self.progress)
        finally:
            if owned:
                executor.close()
        self._store(problem, proc, res, recorder, alive, failed, error_score != "raise")
        if self.refit:
            from sklearn.utils import _safe_indexing  # noqa: F401 - fit on all data as given
            t0 = time.perf_counter()
            est = clone(self.estimator).set_params(**self.best_params_)
            est.fit(X, y, **fit_params)
            self.best_estimator_ = est
            self.refit_time_ = time.perf_counter() - t0
        if hasattr(X, "shape") and len(getattr(X, "shape", ())) == 2:
            self.n_features_in_ = int(X.shape[1])
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        return self

    def _probe(self, problem: EstimatorProblem, streams: Streams, executor) -> np.ndarray:
        """Every candidate on replication 0; nan where the fit or the score failed."""
        import copy
        probe = copy.copy(problem)
        probe._on_error = "nan"
        systems, reps = np.arange(problem.k), np.zeros(problem.k, dtype=np.int64)
        if executor is None:
            return probe.simulate(systems, reps, streams)
        executor.bind(probe, streams)
        return np.asarray(executor.simulate(systems, reps), dtype=np.float64)

    def _store(self, problem, proc, res, recorder, alive, failed, probed: bool) -> None:
        k = problem.k
        n = np.zeros(k, dtype=np.int64)
        n[alive] = res.sample_sizes
        mean, std = recorder.stats(n)
        engine = np.full(k, np.nan)
        engine[alive] = res.means
        off = ~np.isclose(mean, engine, rtol=1e-9, atol=0) & (n > 0)
        mean[off], std[off] = engine[off], np.nan          # a path the recorder did not see
        best = int(alive[res.best])
        status = np.where(failed, "failed", "eliminated" if proc.kind == "fixed_precision" else "not selected")
        status = status.astype(object)
        status[best] = "selected"
        eliminated_at = np.where(status == "eliminated", n, -1)
        order = np.lexsort((np.arange(k), -np.nan_to_num(mean, nan=-np.inf), failed, np.arange(k) != best))
        rank = np.empty(k, dtype=np.int32)
        rank[order] = np.arange(1, k + 1)
        results: dict[str, Any] = {"params": list(problem.candidates)}
        for name in sorted({p for c in problem.candidates for p in c}):
            col = np.ma.MaskedArray(np.empty(k, dtype=object), mask=True)
            for i, c in enumerate(problem.candidates):
                if name in c:
                    col[i] = c[name]
            results[f"param_{name}"] = col
        results.update(mean_test_score=mean, std_test_score=std, n_replications=n, rank_test_score=rank,
                       status=status, eliminated_at=eliminated_at)
        self.cv_results_ = results
        self.best_index_ = best
        self.best_params_ = dict(problem.candidates[best])
        self.best_score_ = float(mean[best])
        if probed:    # k probe fits; the alive candidates' split-0 scores were reused from them
            self.n_fits_ = k + recorder.fits({(int(i), 0) for i in alive})
        else:
            self.n_fits_ = recorder.fits(set())
        self.n_candidates_ = k
        self.selection_ = res
        self.guarantee_ = res.guarantee
        self.scorer_ = problem.scorer
        self.multimetric_ = False

    # ------------------------------------------------------------ delegation
    def _check_fitted(self, method: str):
        from sklearn.exceptions import NotFittedError
        if not hasattr(self, "best_index_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit first")
        if not self.refit:
            raise AttributeError(f"{method} is available only after refit=True")
        return self.best_estimator_

    @available_if(_delegates("predict"))
    def predict(self, X):
        return self._check_fitted("predict").predict(X)

    @available_if(_delegates("predict_proba"))
    def predict_proba(self, X):
        return self._check_fitted("predict_proba").predict_proba(X)

    @available_if(_delegates("predict_log_proba"))
    def predict_log_proba(self, X):
        return self._check_fitted("predict_log_proba").predict_log_proba(X)

    @available_if(_delegates("decision_function"))
    def decision_function(self, X):
        return self._check_fitted("decision_function").decision_function(X)

    @available_if(_delegates("transform"))
    def transform(self, X):
        return self._check_fitted("transform").transform(X)

    @available_if(_delegates("inverse_transform"))
    def inverse_transform(self, X):
        return self._check_fitted("inverse_transform").inverse_transform(X)

    @available_if(_delegates("score_samples"))
    def score_samples(self, X):
        return self._check_fitted("score_samples").score_samples(X)

    def score(self, X, y=None):
        """The search's scorer on (X, y) with the refitted best estimator (larger is better)."""
        est = self._check_fitted("score")
        return float(self.scorer_(est, X, y))

    @property
    def classes_(self):
        return self._check_fitted("classes_").classes_


class _Recorder:
    """Executor wrapper that keeps every score the search drew, by (candidate, split).

    Blocks pass through unchanged (the selection is the inner executor's). Means and standard
    deviations are then computed from the scores in split order (``math.fsum``), so they are
    the same on every backend; groups run by partitioned procedures (P3C, DC) report only
    their sums, which are added (those candidates' statistics may differ in the last bits).
    """

    def __init__(self, inner, k: int, alive: np.ndarray):
        from ..sampling import SerialExecutor
        self._inner = inner if inner is not None else SerialExecutor()
        self._alive = np.asarray(alive, dtype=np.int64)
        self._values: list[dict[int, float]] = [{} for _ in range(k)]
        self._n = np.zeros(k, dtype=np.int64)      # from groups
        self._s = np.zeros(k)
        self._q = np.zeros(k)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def bind(self, problem, streams) -> None:
        self._inner.bind(problem, streams)

    def simulate(self, systems, reps):
        out = self._inner.simulate(systems, reps)
        vals = np.asarray(out, dtype=np.float64)
        if vals.shape == np.shape(systems):
            for i, r, v in zip(self._alive[np.asarray(systems, dtype=np.int64)], np.asarray(reps), vals):
                self._values[int(i)][int(r)] = float(v)
        return out

    def map_groups(self, fn, tasks):
        outs = self._inner.map_groups(fn, tasks)
        for task, (_, stats) in zip(tasks, outs):
            g = self._alive[np.asarray(task["systems"], dtype=np.int64)]
            self._n[g] += np.asarray(stats["n"], dtype=np.int64)
            self._s[g] += stats["sums"]
            self._q[g] += stats["sumsq"]
        return outs

    def stats(self, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation with ddof=0 as GridSearchCV reports) of each candidate's
        ``used[i]`` samples: the group samples plus its smallest replications drawn here (a
        look-ahead may simulate a few more than the procedure used). nan where unknown."""
        k = len(self._values)
        mean = np.full(k, np.nan)
        std = np.full(k, np.nan)
        for i, seen in enumerate(self._values):
            m = int(used[i]) - int(self._n[i])
            if used[i] == 0 or m < 0 or m > len(seen):
                continue
            v = np.array([seen[r] for r in sorted(seen)[:m]], dtype=np.float64)
            if self._n[i] == 0:
                mean[i] = math.fsum(v) / m
                std[i] = math.sqrt(math.fsum((v - mean[i]) ** 2) / m)
            else:
                mean[i] = (math.fsum(v) + self._s[i]) / used[i]
                std[i] = math.sqrt(max((math.fsum(v * v) + self._q[i]) / used[i] - mean[i] ** 2, 0.0))
        return mean, std

    def fits(self, memo_pairs: set[tuple[int, int]]) -> int:
        """Fits performed: distinct pairs drawn here that were not known before, plus the groups'."""
        drawn = sum(1 for i, seen in enumerate(self._values) for r in seen if (i, r) not in memo_pairs)
        return int(drawn + self._n.sum())
