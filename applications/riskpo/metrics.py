"""Unbiased pass@k and per-bucket evaluation summaries."""
from __future__ import annotations

import numpy as np

from ...errors import ParameterError


def pass_at_k(n, c, k: int) -> np.ndarray:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) (Chen et al. 2021, arXiv 2107.03374).

    ``n`` samples of which ``c`` correct (arrays broadcast); needs n >= k. Computed as
    -expm1 of log-gamma differences (vectorized, stable).
    """
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ParameterError(f"k must be an integer >= 1, got {k!r}")
    if np.any(n < k):
        raise ParameterError(f"pass@{k} needs n >= k samples, got n = {n.min()}")
    if np.any((c < 0) | (c > n)):
        raise ParameterError("need 0 <= c <= n")
    from scipy.special import gammaln
    n, c = np.broadcast_arrays(n, c)
    m = n - c
    ok = m >= k  # otherwise every k-subset holds a correct sample
    mm = np.where(ok, m, k).astype(np.float64)
    log_ratio = gammaln(mm + 1) - gammaln(mm - k + 1) - gammaln(n + 1.0) + gammaln(n - k + 1.0)
    return np.where(ok, -np.expm1(log_ratio), 1.0) + 0.0


def bootstrap_ci(x: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``x`` (over seeds)."""
    x = np.asarray(x, float)
    if x.size < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    m = x[rng.integers(0, x.size, (n_boot, x.size))].mean(1)
    return float(np.quantile(m, (1 - level) / 2)), float(np.quantile(m, 1 - (1 - level) / 2))


def t_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t CI of the mean of ``x`` (over seeds)."""
    from scipy import stats
    x = np.asarray(x, float)
    if x.size < 2:
        return (float("nan"), float("nan"))
    h = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean() - h), float(x.mean() + h)
