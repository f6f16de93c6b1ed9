"""Candidates of a scikit-learn estimator as systems, random train/test splits as replications.

System i is ``clone(estimator).set_params(**candidates[i])``; its sample at replication r is
its test score (``scorer(fitted, X_test, y_test)``, larger is better) on one random split of
(X, y). The split and the estimator's ``random_state`` (every ``random_state`` /
``*__random_state`` parameter the candidate does not set itself) come from the generator of
(seed, i, r) of the engine's streams; under common random numbers (``crn=True``) that is the
generator of (seed, r), so replication r is the same split and the same estimator seed for
every candidate and the procedure can use the pairing. Without CRN each candidate gets its
own independent splits, as independence-assuming procedures (Rinott, GSP) require.

Splits: a user splitter with a ``random_state`` parameter (ShuffleSplit family; its first
split is used), else ``GroupShuffleSplit`` when groups are given, ``StratifiedShuffleSplit``
for a classifier on a binary/multiclass target, ``ShuffleSplit`` otherwise.
"""
from __future__ import annotations

import importlib
import json
import numbers
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np

from ..errors import ParameterError, SimulationError
from ..streams import Streams, generator_for
from ..params import Interval, Mapping_, NoneValue, Options, Sequence_, String, optional
from .base import Problem, check_block

__all__ = ["EstimatorProblem", "SklearnProblem", "from_estimator", "SKLEARN_MODULES", "DATASETS"]

#: modules a dotted estimator name in a config may come from (never arbitrary imports)
SKLEARN_MODULES = (
    "sklearn.svm", "sklearn.linear_model", "sklearn.ensemble", "sklearn.neighbors", "sklearn.tree",
    "sklearn.naive_bayes", "sklearn.discriminant_analysis", "sklearn.kernel_ridge",
    "sklearn.neural_network", "sklearn.gaussian_process", "sklearn.dummy",
)
#: data sets a config may name (scikit-learn's bundled loaders; nothing is downloaded)
DATASETS = ("iris", "wine", "digits", "breast_cancer", "diabetes")

_MAX_SEED = 2**31 - 1
_CACHE = 64


class EstimatorProblem(Problem):
    """k candidate parameter settings of one estimator; sample = test score on a random split.

    Parameters
    ----------
    estimator : unfitted scikit-learn estimator (has ``fit`` and ``get_params``).
    candidates : list of parameter dicts, one per system (``set_params`` keys).
    X, y : data; ``groups`` for group-aware splits; ``fit_params`` passed to every fit
        (arrays of length n_samples are split with X).
    scoring : None (the estimator's ``score``), a scorer name or a callable, as
        ``sklearn.metrics.check_scoring`` accepts.
    splitter : None or a splitter with a ``random_state`` parameter (ShuffleSplit family).
    test_size : test fraction of the default splitters.
    error_score : "raise" (a failing fit raises SimulationError naming the parameters) or a
        finite number returned as that sample's score.
    true_means : known expected scores, if any (for the validation harness).
    """

    name = "estimator"

    def __init__(self, estimator, candidates: Sequence[dict], X, y=None, *, groups=None,
                 scoring=None, splitter=None, test_size: float = 0.25, error_score="raise",
                 fit_params: dict | None = None, true_means=None):
        from sklearn.metrics import check_scoring
        check_estimator_like(estimator)
        self.estimator = estimator
        self.candidates = check_candidates(candidates)
        self.k = len(self.candidates)
        if self.k < 2:
            raise ParameterError(f"candidates must hold at least 2 parameter settings, got {self.k}")
        self.X, self.y, self.groups = X, y, groups
        self.n_samples = _n_samples(X)
        if y is not None and _n_samples(y) != self.n_samples:
            raise ParameterError(f"X and y have different lengths: {self.n_samples} and {_n_samples(y)}")
        if groups is not None and _n_samples(groups) != self.n_samples:
            raise ParameterError(f"groups must have one entry per sample ({self.n_samples}), "
                                 f"got {_n_samples(groups)}")
        self.scoring = scoring
        try:
            self.scorer = check_scoring(estimator, scoring)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"scoring={scoring!r} is not valid: {exc}") from None
        if not (isinstance(test_size, numbers.Real) and 0 < test_size < 1):
            raise ParameterError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
        self.test_size = float(test_size)
        self.splitter = check_splitter(splitter)
        self.error_score = check_error_score(error_score)
        if fit_params is not None and not isinstance(fit_params, dict):
            raise ParameterError(f"fit_params must be a dict, got {fit_params!r}")
        self.fit_params = dict(fit_params or {})
        self.true_means = None if true_means is None else np.asarray(true_means, dtype=np.float64)
        if self.true_means is not None and self.true_means.shape != (self.k,):
            raise ParameterError(f"true_means must have length k={self.k}, got shape {self.true_means.shape}")
        self._on_error = "value"     # "nan": the failure probe of RSSearchCV marks failures
        self._ids: np.ndarray | None = None   # stream id of each system (a subset keeps its parent's)
        self._memo: dict[tuple[int, int], float] = {}   # samples already computed (the probe's)
        self.max_replications: int | None = None
        self._splits: OrderedDict = OrderedDict()
        self.split_indices(0)        # a splitter that cannot split this data fails here, before any fit

    # ---------------------------------------------------------------- replications
    def _seeds(self, rng: np.random.Generator) -> tuple[int, int]:
        s = rng.integers(0, _MAX_SEED, size=2)
        return int(s[0]), int(s[1])

    def split_indices(self, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, test) indices of the split with ``random_state=split_seed`` (cached)."""
        hit = self._splits.get(split_seed)
        if hit is not None:
            self._splits.move_to_end(split_seed)
            return hit
        splitter = self._make_splitter(split_seed)
        try:
            train, test = next(iter(splitter.split(self.X, self.y, self.groups)))
        except Exception as exc:  # noqa: BLE001 - reported as bad input
            raise ParameterError(f"the splitter {splitter!r} cannot split this data: {exc}") from None
        out = (np.asarray(train), np.asarray(test))
        self._splits[split_seed] = out
        if len(self._splits) > _CACHE:
            self._splits.popitem(last=False)
        return out

    def _make_splitter(self, split_seed: int):
        from sklearn.base import is_classifier
        from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit
        from sklearn.utils.multiclass import type_of_target
        if self.splitter is not None:
            import copy
            splitter = copy.deepcopy(self.splitter)
            splitter.random_state = split_seed
            return splitter
        if self.groups is not None:
            return GroupShuffleSplit(n_splits=1, test_size=self.test_size, random_state=split_seed)
        if (self.y is not None and is_classifier(self.estimator)
                and type_of_target(self.y) in ("binary", "multiclass")):
            return StratifiedShuffleSplit(n_splits=1, test_size=self.test_size, random_state=split_seed)
        return ShuffleSplit(n_splits=1, test_size=self.test_size, random_state=split_seed)

    def replication(self, system: int, rep: int, streams: Streams) -> tuple[np.ndarray, np.ndarray, int]:
        """(train, test, estimator seed) of (system, rep); the same for all systems under CRN."""
        sid = int(system) if self._ids is None else int(self._ids[system])
        split_seed, est_seed = self._seeds(generator_for(streams, sid, int(rep)))
        train, test = self.split_indices(split_seed)
        return train, test, est_seed

    # ---------------------------------------------------------------- samples
    def candidate_estimator(self, system: int, random_state: int | None = None):
        """Unfitted clone with candidate ``system``'s parameters (and ``random_state`` set)."""
        from sklearn.base import clone
        params = self.candidates[system]
        est = clone(self.estimator).set_params(**params)
        if random_state is not None:
            keys = [key for key in est.get_params(deep=True)
                    if (key == "random_state" or key.endswith("__random_state")) and key not in params]
            if keys:
                est.set_params(**{key: random_state for key in keys})
        return est

    def score_once(self, system: int, rep: int, streams: Streams) -> float:
        """Fit candidate ``system`` on the train part of replication ``rep``; its test score."""
        from sklearn.utils import _safe_indexing
        hit = self._memo.get((int(system), int(rep)))
        if hit is not None:
            return hit
        if self.max_replications is not None and rep >= self.max_replications:
            raise SimulationError(f"the procedure asked for replication {rep} of candidate "
                                  f"{self.candidates[system]!r}, beyond max_replications="
                                  f"{self.max_replications}; raise max_replications or delta",
                                  system=int(system), replication=int(rep))
        train, test, est_seed = self.replication(system, rep, streams)
        ytr = None if self.y is None else _safe_indexing(self.y, train)
        yte = None if self.y is None else _safe_indexing(self.y, test)
        try:
            est = self.candidate_estimator(system, est_seed)
            est.fit(_safe_indexing(self.X, train), ytr, **_index_fit_params(self.fit_params, train,
                                                                               self.n_samples))
            value = float(self.scorer(est, _safe_indexing(self.X, test), yte))
            if not np.isfinite(value):
                raise ValueError(f"the score is {value}")
        except Exception as exc:  # noqa: BLE001 - error_score decides
            if self._on_error == "nan":
                return float("nan")
            if self.error_score == "raise":
                raise SimulationError(f"fitting/scoring candidate {system} with parameters "
                                      f"{self.candidates[system]!r} raised {type(exc).__name__}: {exc}",
                                      system=int(system), replication=int(rep)) from exc
            return float(self.error_score)
        return value

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        systems, reps = check_block(systems, reps, self.k)
        return np.array([self.score_once(int(i), int(r), streams) for i, r in zip(systems, reps)],
                        dtype=np.float64)

    def subset(self, systems, memo: dict[tuple[int, int], float] | None = None) -> "EstimatorProblem":
        """The problem restricted to ``systems`` (at least 2); each keeps its samples (its stream id)
        and ``memo`` (keyed by the parent's system ids) seeds the new problem's known samples."""
        import copy
        systems = [int(i) for i in systems]
        if len(systems) < 2:
            raise ParameterError(f"at least 2 candidates are needed, got {len(systems)}")
        sub = copy.copy(self)
        sub.candidates = [self.candidates[i] for i in systems]
        sub.k = len(systems)
        ids = np.arange(self.k) if self._ids is None else self._ids
        sub._ids = ids[systems].copy()
        sub.true_means = None if self.true_means is None else self.true_means[systems].copy()
        pos = {i: j for j, i in enumerate(systems)}
        sub._memo = {(pos[i], r): v for (i, r), v in (memo or {}).items() if i in pos}
        sub._splits = OrderedDict()
        sub._on_error = "value"
        return sub

    # ---------------------------------------------------------------- description
    def params(self) -> dict[str, Any]:
        return {"estimator": repr(self.estimator), "k": self.k, "scoring": _plain(self.scoring),
                "test_size": self.test_size, "n_samples": self.n_samples}

    def label(self, system: int) -> str:
        return json.dumps(_plain(self.candidates[int(system)]), sort_keys=True)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_splits"] = OrderedDict()   # the split cache is rebuilt where the problem runs
        return state

    def __repr__(self) -> str:
        return f"EstimatorProblem({self.estimator!r}, k={self.k}, scoring={self.scoring!r})"


def from_estimator(estimator, candidates: Sequence[dict], X, y=None, **kwargs) -> EstimatorProblem:
    """Problem whose system i is ``estimator`` with ``candidates[i]``; see :class:`EstimatorProblem`.

    Use a procedure with ``crn=True`` (KN, KT, OCBA; P3C always) so that replication r is the
    same split for every candidate.
    """
    return EstimatorProblem(estimator, candidates, X, y, **kwargs)


class SklearnProblem(EstimatorProblem):
    """The config form (``[problem] name = "sklearn"``): everything given by name.

    ``estimator`` is a dotted class name from :data:`SKLEARN_MODULES` (e.g. "sklearn.svm.SVC"),
    ``estimator_params`` its fixed parameters, ``param_grid`` a dict (or list of dicts) of
    lists as ``GridSearchCV`` takes, ``dataset`` one of :data:`DATASETS`.
    """

    name = "sklearn"
    _parameter_constraints = {
        "estimator": [String("a dotted estimator class name such as 'sklearn.svm.SVC'")],
        "param_grid": [Mapping_(), Sequence_(Mapping_(), what="a list of tables of value lists")],
        "dataset": [Options(DATASETS)], "estimator_params": optional([Mapping_()]),
        "scoring": optional([String("a scorer name")]),
        "test_size": [Interval(float, 0.0, 1.0, closed="neither")],
        "error_score": [Options(("raise",)), Interval(float, None, None)]}

    def __init__(self, estimator: str, param_grid, dataset: str, *, estimator_params: dict | None = None,
                 scoring: str | None = None, test_size: float = 0.25, error_score="raise"):
        from sklearn.model_selection import ParameterGrid
        self._config = {"estimator": estimator, "param_grid": param_grid, "dataset": dataset,
                        "estimator_params": dict(estimator_params or {}), "scoring": scoring,
                        "test_size": test_size, "error_score": error_score}
        cls = estimator_class(estimator)
        if estimator_params is not None and not isinstance(estimator_params, dict):
            raise ParameterError(f"estimator_params must be a table of parameters, got {estimator_params!r}")
        try:
            est = cls(**(estimator_params or {}))
        except TypeError as exc:
            raise ParameterError(f"bad estimator_params for {estimator}: {exc}") from None
        X, y = load_dataset(dataset)
        try:
            cands = list(ParameterGrid(param_grid))
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"param_grid is not a valid grid: {exc}") from None
        if scoring is not None and not isinstance(scoring, str):
            raise ParameterError(f"scoring in a config must be a scorer name, got {scoring!r}")
        super().__init__(est, cands, X, y, scoring=scoring, test_size=test_size, error_score=error_score)

    def params(self) -> dict[str, Any]:
        return dict(self._config)


def estimator_class(dotted: str):
    """The estimator class named ``dotted``, only from :data:`SKLEARN_MODULES`."""
    if not isinstance(dotted, str) or "." not in dotted:
        raise ParameterError(f"estimator must be a dotted class name such as 'sklearn.svm.SVC', got {dotted!r}")
    module, _, cls_name = dotted.rpartition(".")
    if module not in SKLEARN_MODULES:
        raise ParameterError(f"estimator {dotted!r} is not from an allowed module; allowed: "
                             f"{', '.join(SKLEARN_MODULES)}")
    if cls_name.startswith("_"):
        raise ParameterError(f"estimator {dotted!r} names a private object")
    from sklearn.base import BaseEstimator
    cls = getattr(importlib.import_module(module), cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise ParameterError(f"{dotted!r} is not a scikit-learn estimator class of {module}")
    return cls


def load_dataset(name: str):
    """(X, y) of a scikit-learn bundled data set named in :data:`DATASETS`."""
    if name not in DATASETS:
        raise ParameterError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    from sklearn import datasets
    return getattr(datasets, f"load_{name}")(return_X_y=True)


# ---------------------------------------------------------------------------- checks
def check_estimator_like(estimator) -> None:
    if isinstance(estimator, type) or not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        raise ParameterError(f"estimator must be a scikit-learn estimator instance with fit and get_params, "
                             f"got {estimator!r}")


def check_candidates(candidates) -> list[dict]:
    try:
        cands = list(candidates)
    except TypeError:
        raise ParameterError(f"candidates must be a list of parameter dicts, got {candidates!r}") from None
    for c in cands:
        if not isinstance(c, dict):
            raise ParameterError(f"each candidate must be a dict of parameters, got {c!r}")
    return cands


def check_splitter(splitter):
    if splitter is None:
        return None
    if isinstance(splitter, type) or not hasattr(splitter, "split") or not hasattr(splitter, "random_state"):
        raise ParameterError(f"splitter must be a randomized splitter with a random_state parameter "
                             f"(ShuffleSplit, StratifiedShuffleSplit, GroupShuffleSplit), got {splitter!r}")
    return splitter


def check_error_score(error_score):
    if isinstance(error_score, str):
        if error_score != "raise":
            raise ParameterError(f"error_score must be 'raise' or a finite number, got {error_score!r}")
        return error_score
    if (isinstance(error_score, bool) or not isinstance(error_score, numbers.Real)
            or not np.isfinite(error_score)):
        raise ParameterError(f"error_score must be 'raise' or a finite number (the engine needs finite "
                             f"samples), got {error_score!r}")
    return float(error_score)


def _n_samples(a) -> int:
    if hasattr(a, "shape") and len(a.shape) > 0:
        return int(a.shape[0])
    try:
        return len(a)
    except TypeError:
        raise ParameterError(f"expected array-like data, got {type(a).__name__}") from None


def _index_fit_params(fit_params: dict, idx: np.ndarray, n: int) -> dict:
    from sklearn.utils import _safe_indexing
    out = {}
    for key, v in fit_params.items():
        if hasattr(v, "__len__") and not isinstance(v, (str, dict)) and _n_samples(v) == n:
            out[key] = _safe_indexing(v, idx)
        else:
            out[key] = v
    return out


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)
