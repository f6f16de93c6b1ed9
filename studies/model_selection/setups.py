"""The study setups: data set, estimator, grid (20 candidates; 100 for diabetes_knn), scoring, delta.

Cheap models only (SVC and k-NN on small data, ridge): the study must fit in about
40 CPU-minutes on a shared 2-core machine. diabetes_knn (k-NN regression, 100 candidates)
has its score table built from one 50-neighbour query per fold (tables.py), which equals
the 100 separate fits (checked against a real GridSearchCV in run.py). Every candidate list is a ParameterGrid in
scikit-learn's order, so candidate i here is candidate i of GridSearchCV/RSSearchCV.
"""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


def _svc():
    return Pipeline([("scale", StandardScaler()), ("svc", SVC())])


SETUPS = {
    "wine": dict(load=load_wine, estimator=_svc, classifier=True, scoring="accuracy", delta=0.01,
                 grid={"svc__C": [0.1, 0.3, 1.0, 3.0, 10.0], "svc__gamma": [0.003, 0.01, 0.03, 0.1]}),
    "breast_cancer": dict(load=load_breast_cancer, estimator=_svc, classifier=True, scoring="accuracy",
                          delta=0.01, grid={"svc__C": [0.3, 1.0, 3.0, 10.0, 30.0],
                                            "svc__gamma": [0.001, 0.003, 0.01, 0.03]}),
    "digits": dict(load=load_digits, estimator=lambda: KNeighborsClassifier(algorithm="brute"),
                   classifier=True, scoring="accuracy", delta=0.005,
                   grid={"n_neighbors": list(range(1, 11)), "weights": ["uniform", "distance"]}),
    "diabetes": dict(load=load_diabetes, estimator=lambda: Ridge(), classifier=False, scoring="r2",
                     delta=0.01, grid={"alpha": [float(a) for a in np.logspace(-4, 1, 20)]}),
    "diabetes_knn": dict(load=load_diabetes, estimator=lambda: KNeighborsRegressor(algorithm="brute"),
                         classifier=False, scoring="r2", delta=0.01, knn_table=True,
                         halving={"min_resources": 70},    # 56 training samples >= 50 neighbours
                         grid={"n_neighbors": list(range(1, 51)), "weights": ["uniform", "distance"]}),
}


def data(name: str):
    X, y = SETUPS[name]["load"](return_X_y=True)
    return X, y


def candidates(name: str) -> list[dict]:
    return list(ParameterGrid(SETUPS[name]["grid"]))


def kfold(name: str, seed: int):
    """The shuffled 5-fold splitter of partition ``seed`` (what GridSearchCV(cv=...) gets)."""
    cls = StratifiedKFold if SETUPS[name]["classifier"] else KFold
    return cls(n_splits=5, shuffle=True, random_state=seed)
