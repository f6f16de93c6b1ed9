"""Exact expected RiskPO update on a small discrete policy: how biased are sample-quantile weights?

Policy: softmax over K outcomes with scores ``values`` (a bundle score distribution), logits theta,
``p = softmax(theta)``. The MVaR gradient is grad MVaR = E[g(X; q) grad log p(X)] with the TRUE
quantiles q (module :mod:`.mvar`); RiskPO estimates it from N i.i.d. scores with weights g(X_j; q_hat)
and q_hat the linear-interpolation sample quantiles of those same N scores. Here N = G for
per-bundle quantiles (``quantiles="bundle"``, the released behaviour) and N = all bundle scores of
the batch for pooled quantiles (``quantiles="batch"``): one bundle of N scores is the same computation.
:func:`expected_update` sums the estimator over every composition of N draws (multinomial), so
the numbers are exact, not Monte Carlo. Advantages here are g itself (credit "uniform",
scale "none", B = 1), the part of RiskPO the quantiles act on.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from scipy.special import gammaln

from ...errors import ParameterError
from .mvar import RiskTerm, check_terms, exact_mvar, exact_quantile, levels_of, mvar_weights, released_terms


def softmax(theta) -> np.ndarray:
    t = np.asarray(theta, float)
    e = np.exp(t - t.max())
    return e / e.sum()


def exact_gradient(values, theta, terms: Sequence[RiskTerm] = released_terms(), natural_baseline: bool = True
                   ) -> np.ndarray:
    """grad_theta MVaR(p_theta) from the score-function identity with the true quantiles."""
    v, p = np.asarray(values, float), softmax(theta)
    q = {u: torch.tensor(exact_quantile(v, p, u), dtype=torch.float64) for u in levels_of(terms)}
    g = mvar_weights(torch.as_tensor(v), q, terms, natural_baseline=natural_baseline)[0].numpy()
    return (p * g) @ (np.eye(len(v)) - p[None, :])


def exact_quantile_at(values, theta, u: float) -> float:
    """True lower u-quantile of the policy's score distribution."""
    return exact_quantile(np.asarray(values, float), softmax(theta), u)


def finite_difference_gradient(values, theta, terms=released_terms(), h: float = 1e-6) -> np.ndarray:
    t = np.asarray(theta, float)
    out = np.empty(len(t))
    for k in range(len(t)):
        e = np.zeros(len(t))
        e[k] = h
        out[k] = (exact_mvar(values, softmax(t + e), terms) - exact_mvar(values, softmax(t - e), terms)) / (2 * h)
    return out


def compositions(n: int, k: int) -> np.ndarray:
    """All (C(n+k-1, k-1), k) count vectors summing to n."""
    if k == 1:
        return np.array([[n]])
    rows = [np.column_stack([np.full(len(c), i), c]) for i in range(n + 1) for c in [compositions(n - i, k - 1)]]
    return np.concatenate(rows)


def _linear_quantile_from_counts(counts: np.ndarray, values: np.ndarray, u: float) -> np.ndarray:
    """torch/numpy 'linear' sample quantile of the sorted sample with these counts (values ascending)."""
    n = int(counts[0].sum())
    h = (n - 1) * u
    lo = int(math.floor(h))
    frac = h - lo
    cum = np.cumsum(counts, axis=1)

    def at(i):  # i-th order statistic (0-based)
        return values[np.argmax(cum > i, axis=1)]

    hi = min(lo + 1, n - 1)
    return at(lo) + frac * (at(hi) - at(lo))


def expected_update(values, theta, n: int, terms: Sequence[RiskTerm] = released_terms(),
                    natural_baseline: bool = True) -> np.ndarray:
    """E[(1/n) sum_j g(X_j; q_hat) grad log p(X_j)] over n i.i.d. draws, q_hat from the same n draws (exact)."""
    v = np.asarray(values, float)
    if np.any(np.diff(v) <= 0):
        raise ParameterError("values must be strictly increasing")
    if n < 2:
        raise ParameterError(f"n must be >= 2, got {n}")
    terms = check_terms(terms)
    p = softmax(theta)
    C = compositions(int(n), len(v))
    logpmf = gammaln(n + 1) - gammaln(C + 1).sum(1) + (C * np.log(p)).sum(1)
    pmf = np.exp(logpmf)
    q = {u: torch.as_tensor(_linear_quantile_from_counts(C, v, u))[:, None] for u in levels_of(terms)}
    g = mvar_weights(torch.as_tensor(np.broadcast_to(v, C.shape).copy()), q, terms,
                     natural_baseline=natural_baseline)[0].numpy()  # (n_comp, K) weight of each outcome
    per = (C * g) / n  # (n_comp, K): mean weight mass on each outcome
    m = pmf @ per  # E[(1/n) sum_j g_j e_{a_j}]
    return m - m.sum() * p  # grad log p(a) = e_a - p


def bias_table(values, theta, ns: Sequence[int], terms: Sequence[RiskTerm] = released_terms()) -> list[dict]:
    """Relative error ||E[update] - grad|| / ||grad|| and cosine for each n (sample size of the quantiles)."""
    g = exact_gradient(values, theta, terms)
    rows = []
    for n in ns:
        m = expected_update(values, theta, int(n), terms)
        rows.append({"n": int(n), "rel_error": float(np.linalg.norm(m - g) / np.linalg.norm(g)),
                     "cosine": float(m @ g / (np.linalg.norm(m) * np.linalg.norm(g))),
                     "norm_ratio": float(np.linalg.norm(m) / np.linalg.norm(g))})
    return rows
