"""scikit-learn meta-estimators whose candidates are R&S systems and random splits replications.

``RSSearchCV(estimator, param_grid, procedure="kn", alpha=0.05, delta=0.01)`` replaces
``GridSearchCV``: the selected candidate is within ``delta`` of the one with the best expected
score over random splits of the data with probability >= 1 - alpha (under the procedure's
assumptions). The problem adapter is ``rands.problems.from_estimator``.
"""
from __future__ import annotations

from ._search import RSSearchCV

__all__ = ["RSSearchCV"]
