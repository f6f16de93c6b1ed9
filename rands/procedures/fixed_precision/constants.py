"""Constants of the fixed-precision procedures: Rinott h, KN eta, GSP eta.

All integrals over chi-square variables are computed on the log scale
t = log x with composite Gauss-Legendre rules whose range covers the
chi-square law between its 1e-20 quantile and its 1e-20 upper quantile, and
whose panel width follows the spread of log chi2_nu (about sqrt(2/nu)); this
works for nu = 1 .. 1e6 and beyond (no cap on nu). Tail probabilities are
carried as complements (``ndtr(-z)``, ``log1p``), so k up to 1e6 and more is
accurate: the per-comparison error 1 - (1-alpha)^(1/(k-1)) is then ~5e-8.
Roots are found with Brent's method (absolute tolerance 1e-9, relative
1e-14); the quadrature error is below 1e-8 relative in the constant (checked
by refining the nodes in the tests). Stated accuracy: relative 1e-6.

References
----------
Rinott, Y. (1978). On two-stage selection procedures and related
probability-inequalities. Comm. Statist. A 7(8), 799-811.
Kim, S.-H. & Nelson, B. L. (2001). A fully sequential procedure for
indifference-zone selection in simulation. ACM TOMACS 11(3), 251-273.
Ni, E. C., Ciocan, D. F., Henderson, S. G. & Hunter, S. R. (2017). Efficient
ranking and selection in parallel computing environments. Oper. Res. 65(3).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import optimize, special, stats

from ...errors import ParameterError, check_alpha, check_int

#: absolute tolerance of the root finder on every constant
ROOT_XTOL = 1e-9
#: stated relative accuracy of the constants (root + quadrature error)
TOLERANCE = 1e-6

_TAIL = 1e-20
_ORDER = 16


def _log_chi2_rule(nu: float, refine: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes x, log-scale weights w (dt) and density-in-t g(t) of chi2_nu on t = log x.

    Returns (x, w, g) with sum(w * g * phi(x)) ~ E[phi(X)], X ~ chi2_nu.
    """
    lo = float(stats.chi2.ppf(_TAIL, nu))
    hi = float(stats.chi2.isf(_TAIL, nu))
    t_lo, t_hi = np.log(lo), np.log(hi)
    width = min(2.0, 1.0 * np.sqrt(2.0 / nu)) / refine
    n_pan = max(8 * refine, int(np.ceil((t_hi - t_lo) / width)))
    edges = np.linspace(t_lo, t_hi, n_pan + 1)
    u, v = np.polynomial.legendre.leggauss(_ORDER)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    t = (mid[:, None] + half[:, None] * u[None, :]).ravel()
    w = (half[:, None] * v[None, :]).ravel()
    x = np.exp(t)
    g = np.exp(stats.chi2.logpdf(x, nu) + t)
    return x, w, g


def _rinott_pcs(h: float, k: int, nu: float, rule) -> float:
    """Rinott's lower bound on PCS for constant h:
    E_Y[ (E_X[Phi(h / sqrt(nu (1/X + 1/Y)))])^(k-1) ], X, Y iid chi2_nu."""
    x, w, g = rule
    wx = w * g
    inv = 1.0 / x
    # z[y, x] = h / sqrt(nu (1/x + 1/y)); Q(y) = E_X[PhiBar(z)]
    z = h / np.sqrt(nu * (inv[None, :] + inv[:, None]))
    q = special.ndtr(-z) @ wx
    q = np.clip(q, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        inner = np.exp((k - 1) * np.log1p(-q))
    return float(np.dot(wx, inner))


@lru_cache(maxsize=512)
def _rinott_h(k: int, pstar: float, nu: float, refine: int) -> float:
    rule = _log_chi2_rule(nu, refine)
    f = lambda h: _rinott_pcs(h, k, nu, rule) - pstar  # noqa: E731
    if f(0.0) >= 0.0:
        return 0.0
    hi = 2.0
    while f(hi) < 0.0:
        hi *= 2.0
        if hi > 1e15:
            raise ParameterError(f"Rinott h not found for k={k}, 1-alpha={pstar}, nu={nu}")
    return float(optimize.brentq(f, 0.0, hi, xtol=ROOT_XTOL, rtol=1e-14, maxiter=200))


def rinott_h(k: int, pstar: float, nu: float, *, refine: int = 1) -> float:
    """Rinott's constant h(k, 1-alpha, nu).

    h solves  int [int Phi(h / sqrt(nu (1/x + 1/y))) f_nu(x) dx]^(k-1) f_nu(y) dy = 1 - alpha,
    f_nu the chi2_nu density (Rinott 1978). Equivalently h is the (1-alpha)
    quantile of max_{i=2..k} Z_i sqrt(nu (1/X_i + 1/X_1)), Z_i ~ N(0,1) and
    X_i ~ chi2_nu all independent. Relative accuracy 1e-6 for any nu >= 1 (no cap)
    and k up to 1e6 and beyond. ``refine`` multiplies the quadrature nodes
    (for convergence checks). Cached.
    """
    k = check_int("k", k, low=2)
    pstar = float(pstar)
    if not 0.0 < pstar < 1.0:
        raise ParameterError(f"1-alpha must be in (0, 1), got {pstar}")
    nu = float(nu)
    if not nu >= 1.0 or not np.isfinite(nu):
        raise ParameterError(f"degrees of freedom nu = n0 - 1 must be >= 1, got {nu}")
    return _rinott_h(k, pstar, nu, int(refine))


def rinott_h_limit(k: int, pstar: float) -> float:
    """Limit of Rinott's h as nu -> infinity: sqrt(2) Phi^-1((1-alpha)^(1/(k-1)))."""
    return float(np.sqrt(2.0) * special.ndtri(np.exp(np.log(pstar) / (k - 1))))


@lru_cache(maxsize=4096)
def kn_eta(k: int, alpha: float, n0: int) -> float:
    """KN's eta = 1/2 [(2 alpha / (k-1))^(-2/(n0-1)) - 1] (Kim & Nelson 2001)."""
    k = check_int("k", k, low=2)
    alpha = check_alpha(alpha)
    n0 = check_int("n0", n0, low=2)
    return 0.5 * float(np.expm1(-2.0 / (n0 - 1) * np.log(2.0 * alpha / (k - 1))))


def kn_h2(k: int, alpha: float, n0: int, c: int = 1) -> float:
    """KN's h^2 for the boundary parameter c (Kim & Nelson 2001): 2 eta (n0 - 1) at c = 1.

    For a positive integer c, h^2 solves g(h^2) = alpha / (k - 1) with
    g(h^2) = sum_{l=1..c} (-1)^(l+1) (1 - I(l = c) / 2) (1 + (2c - l) l h^2 / (c^2 nu))^(-nu / 2),
    nu = n0 - 1: Fabian's (1974) probability that a Brownian motion with drift delta
    leaves the triangle |W| < a - lambda t (lambda = delta / (2c), a = h^2 S^2 / (2 c delta))
    through the wrong side, exp(-2 a lambda (2c - l) l / sigma^2) term by term, averaged
    over S^2 ~ sigma^2 chi2_nu / nu. At c = 1 this is the closed form above.
    """
    c = check_int("c", c, low=1)
    if c == 1:
        return 2.0 * kn_eta(k, alpha, n0) * (n0 - 1)
    k = check_int("k", k, low=2)
    alpha = check_alpha(alpha)
    n0 = check_int("n0", n0, low=2)
    return float(kn_h2_many(np.array([k]), float(alpha), n0, c)[0])


def kn_wrong_exit(h2, k, n0: int, c: int):
    """g(h^2) of :func:`kn_h2` times (k - 1): the Bonferroni bound on KN's error for h^2
    (elementwise over arrays h2, k)."""
    nu = float(n0 - 1)
    h2 = np.asarray(h2, dtype=np.float64)
    tot = np.zeros(h2.shape)
    for l in range(1, c + 1):
        w = 1.0 - 0.5 * (l == c)
        tot += (-1) ** (l + 1) * w * np.exp(-0.5 * nu * np.log1p((2 * c - l) * l * h2 / (c * c * nu)))
    out = tot * (np.asarray(k, dtype=np.float64) - 1.0)
    return float(out) if out.ndim == 0 else out


def kn_h2_many(k: np.ndarray, alpha: float, n0: int, c: int) -> np.ndarray:
    """:func:`kn_h2` for an array of group sizes k (>= 2) at once: bisection on log h^2 (64
    halvings of a bracket that starts at [1e-12, 2 c^2 h^2(c = 1)] and grows until it holds;
    g is decreasing in h^2), relative accuracy near machine precision."""
    k = np.asarray(k, dtype=np.float64)
    nu = n0 - 1
    h1 = nu * np.expm1(-2.0 / nu * np.log(2.0 * alpha / (k - 1.0)))      # c = 1's h^2 (closed form)
    if c == 1:
        return h1
    lo = np.full(k.shape, np.log(1e-12))
    hi = np.log(2.0 * c * c * h1)
    while np.any(bad := kn_wrong_exit(np.exp(hi), k, n0, c) > alpha):
        hi = np.where(bad, hi + np.log(2.0), hi)
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        above = kn_wrong_exit(np.exp(mid), k, n0, c) > alpha
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.exp(0.5 * (lo + hi))


def _min_chi2_rule(nu: float, refine: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Nodes m and weights for E[phi(M)], M = min of two iid chi2_nu (log scale)."""
    x, w, g = _log_chi2_rule(nu, refine)
    sf = np.exp(stats.chi2.logsf(x, nu))
    return x, w * 2.0 * g * sf


def gsp_tail(eta: float, nu: float, refine: int = 1) -> float:
    """E[2 PhiBar(eta sqrt(M))], M = min of two independent chi2_nu."""
    m, wm = _min_chi2_rule(nu, refine)
    return float(np.dot(wm, 2.0 * special.ndtr(-eta * np.sqrt(m))))


@lru_cache(maxsize=512)
def _gsp_eta(k: int, alpha1: float, nu: float, refine: int) -> float:
    target = -float(np.expm1(np.log1p(-alpha1) / (k - 1)))
    m, wm = _min_chi2_rule(nu, refine)
    sq = np.sqrt(m)

    def f(eta: float) -> float:
        return float(np.dot(wm, 2.0 * special.ndtr(-eta * sq))) - target

    if f(0.0) <= 0.0:
        return 0.0
    hi = 1.0
    while f(hi) > 0.0:
        hi *= 2.0
        if hi > 1e15:
            raise ParameterError(f"GSP eta not found for k={k}, alpha1={alpha1}, nu={nu}")
    return float(optimize.brentq(f, 0.0, hi, xtol=ROOT_XTOL, rtol=1e-14, maxiter=200))


def gsp_eta(k: int, alpha1: float, n1: int, *, refine: int = 1) -> float:
    """GSP's screening constant eta (Ni, Ciocan, Henderson & Hunter 2017).

    eta solves 1 - (1 - alpha1)^(1/(k-1)) = E[2 PhiBar(eta sqrt(M))], M the
    minimum of two independent chi2_{n1-1} variables. Relative accuracy 1e-6. Cached.
    """
    k = check_int("k", k, low=2)
    alpha1 = check_alpha(alpha1, "alpha1")
    n1 = check_int("n1", n1, low=2)
    return _gsp_eta(k, alpha1, float(n1 - 1), int(refine))


__all__ = ["rinott_h", "rinott_h_limit", "kn_eta", "kn_h2", "gsp_eta", "gsp_tail", "TOLERANCE"]
