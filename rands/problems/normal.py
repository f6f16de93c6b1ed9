"""Normal test problems with known truth: slippage, MDM, random means, clustered.

All share one model: sample (i, r) is
    X_ir = mu_i + sigma_i (sqrt(rho) Z_{c(i), r} + sqrt(1 - rho) E_ir),
with Z and E standard normal. Without CRN every system has its own stream, so
X_ir are independent N(mu_i, sigma_i^2) whatever rho is. With CRN the systems
of cluster c share Z_{c, r}: corr(X_i, X_j) = rho inside a cluster and 0 across
clusters (one cluster when ``clusters`` is None), the symmetric benchmark of
clustering and conquer (Zhang & Peng, arXiv 2402.02196).
"""
from __future__ import annotations

import numba
import numpy as np

from ..errors import ParameterError, check_float
from ..streams import Streams, normal_at, stream_state, system_stream_key
from ..params import POSITIVE, Interval, NoneValue, Options, Sequence_, ints
from .base import Problem, check_k

_RHO = [Interval(float, 0.0, 1.0)]
_FINITE = Interval(float, None, None)


@numba.njit(cache=True)
def _normal_kernel(seed_key, systems, reps, mu, sd, cluster, n_clusters, rho, crn, out):
    a = np.sqrt(rho)
    b = np.sqrt(1.0 - rho)
    last = np.int64(-1)
    key = system_stream_key(seed_key, 0, crn)
    for n in range(systems.shape[0]):
        i = systems[n]
        if i != last:
            key = system_stream_key(seed_key, i, crn)
            last = i
        st = stream_state(key, reps[n])
        if crn:
            e = normal_at(st, n_clusters + i)
            z = normal_at(st, cluster[i]) if rho > 0.0 else 0.0
        else:
            e = normal_at(st, 0)
            z = normal_at(st, 1) if rho > 0.0 else 0.0
        out[n] = mu[i] + sd[i] * (a * z + b * e)
    return out


class NormalProblem(Problem):
    """Independent-or-CRN-correlated normal systems with given means and sds."""

    name = "normal"
    _parameter_constraints = {
        "means": [Sequence_(_FINITE, min_len=2, what="a list of at least 2 finite numbers")],
        "sigmas": [*POSITIVE, Sequence_(POSITIVE[0], min_len=2, what="a list of k finite numbers > 0")],
        "rho": _RHO,
        "clusters": [NoneValue(), Sequence_(Interval(int, 0, None), min_len=2,
                                             what="a list of k cluster labels (integers >= 0)")]}

    def __init__(self, means, sigmas=1.0, rho: float = 0.0, clusters=None):
        means = np.ascontiguousarray(means, dtype=np.float64)
        if means.ndim != 1:
            raise ParameterError("means must be a 1-D array")
        self.k = check_k(means.shape[0])
        sig = np.broadcast_to(np.asarray(sigmas, dtype=np.float64), means.shape).copy()
        if not np.all(np.isfinite(means)):
            raise ParameterError("means must be finite")
        if not np.all(sig > 0) or not np.all(np.isfinite(sig)):
            raise ParameterError("sigma must be positive and finite")
        self.rho = check_float("rho", rho, low=0.0, high=1.0)
        if clusters is None:
            cl = np.zeros(self.k, dtype=np.int64)
        else:
            cl = np.ascontiguousarray(clusters, dtype=np.int64)
            if cl.shape != means.shape or cl.min() < 0:
                raise ParameterError("clusters must be k non-negative cluster labels")
        self.true_means = means
        self.sigmas = sig
        self.clusters = cl
        self.n_clusters = int(cl.max()) + 1

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        systems = np.ascontiguousarray(systems, dtype=np.int64)
        reps = np.ascontiguousarray(reps, dtype=np.int64)
        out = np.empty(systems.shape[0], dtype=np.float64)
        return _normal_kernel(streams.seed_key, systems, reps, self.true_means, self.sigmas, self.clusters,
                              self.n_clusters, self.rho, streams.crn, out)

    def params(self):
        return {"means": self.true_means.tolist(), "sigmas": self.sigmas.tolist(), "rho": self.rho,
                "clusters": self.clusters.tolist()}


def _variances(k: int, sigma: float, variances: str) -> np.ndarray:
    if variances == "equal":
        return np.full(k, sigma)
    if variances == "increasing":   # best has the smallest variance
        return sigma * np.sqrt(1.0 + np.arange(k) / (k - 1))
    if variances == "decreasing":
        return sigma * np.sqrt(2.0 - np.arange(k) / (k - 1))
    raise ParameterError(f"variances must be 'equal', 'increasing' or 'decreasing', got {variances!r}")


class _ConfigurationProblem(NormalProblem):
    """A classical IZ configuration: means from :meth:`_means`, equal or graded variances."""

    _parameter_constraints = {"k": ints(2), "delta": POSITIVE, "sigma": POSITIVE, "rho": _RHO,
                              "variances": [Options(("equal", "increasing", "decreasing"))]}

    def __init__(self, k: int = 10, delta: float = 0.5, sigma: float = 1.0, rho: float = 0.0,
                 variances: str = "equal"):
        k = check_k(k)
        self.delta = check_float("delta", delta, low=0.0, low_open=True)
        self.sigma = check_float("sigma", sigma, low=0.0, low_open=True)
        self.variances = variances
        super().__init__(self._means(k, self.delta), _variances(k, self.sigma, variances), rho)

    @staticmethod
    def _means(k: int, delta: float) -> np.ndarray:
        raise NotImplementedError

    def params(self):
        return {"k": self.k, "delta": self.delta, "sigma": self.sigma, "rho": self.rho,
                "variances": self.variances}


class Slippage(_ConfigurationProblem):
    """Slippage configuration: system 0 has mean delta, the other k-1 have mean 0."""

    name = "slippage"

    @staticmethod
    def _means(k: int, delta: float) -> np.ndarray:
        means = np.zeros(k)
        means[0] = delta
        return means


class MonotoneDecreasingMeans(_ConfigurationProblem):
    """MDM: mu_i = -i * delta (system 0 best), Kim & Nelson (2001)."""

    name = "mdm"

    @staticmethod
    def _means(k: int, delta: float) -> np.ndarray:
        return 0.0 - delta * np.arange(k)


class RandomMeans(NormalProblem):
    """Means drawn once from N(0, scale^2) with ``means_seed`` (Li, Fan & Hong's
    "good alternatives grow" setting when k is large)."""

    name = "random"
    _parameter_constraints = {"k": ints(2), "scale": POSITIVE, "sigma": POSITIVE, "rho": _RHO,
                              "means_seed": ints(0)}

    def __init__(self, k: int = 10, scale: float = 1.0, sigma: float = 1.0, rho: float = 0.0,
                 means_seed: int = 0):
        k = check_k(k)
        self.scale = check_float("scale", scale, low=0.0, low_open=True)
        self.sigma = check_float("sigma", sigma, low=0.0, low_open=True)
        self.means_seed = int(means_seed)
        rng = np.random.default_rng(np.random.SeedSequence([self.means_seed, 0x6D65616E]))
        super().__init__(self.scale * rng.standard_normal(k), self.sigma, rho)

    def params(self):
        return {"k": self.k, "scale": self.scale, "sigma": self.sigma, "rho": self.rho,
                "means_seed": self.means_seed}


class ClusteredNormal(NormalProblem):
    """p clusters of k/p systems; corr rho inside a cluster under CRN, 0 across.

    System i belongs to cluster ``i * p // k`` (contiguous blocks). Means:
    ``"slippage"`` (system 0 has delta, others 0) or ``"spread"`` (system 0 has
    delta, others evenly on [-3 delta, 0], shuffled with ``means_seed``), or
    ``"random"`` (N(0, 1) means, the largest moved delta above the runner-up).
    """

    name = "clustered"
    _parameter_constraints = {"k": ints(2), "p": ints(1), "rho": _RHO, "delta": POSITIVE, "sigma": POSITIVE,
                              "means": [Options(("slippage", "spread", "random"))], "means_seed": ints(0)}

    def __init__(self, k: int = 64, p: int = 4, rho: float = 0.9, delta: float = 0.5,
                 sigma: float = 1.0, means: str = "slippage", means_seed: int = 0):
        k = check_k(k)
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 1 <= p <= k:
            raise ParameterError(f"p (number of clusters) must be an integer in [1, k={k}], got {p!r}")
        self.p = int(p)
        self.delta = check_float("delta", delta, low=0.0, low_open=True)
        self.sigma = check_float("sigma", sigma, low=0.0, low_open=True)
        self.means_kind = means
        self.means_seed = int(means_seed)
        rng = np.random.default_rng(np.random.SeedSequence([self.means_seed, 0x636C7573]))
        if means == "slippage":
            mu = np.zeros(k)
            mu[0] = self.delta
        elif means == "spread":
            rest = np.linspace(-3 * self.delta, 0.0, k - 1)
            mu = np.concatenate([[self.delta], rng.permutation(rest)])
        elif means == "random":
            mu = rng.standard_normal(k)
            order = np.argsort(mu)
            mu[order[-1]] = mu[order[-2]] + self.delta
        else:
            raise ParameterError(f"means must be 'slippage', 'spread' or 'random', got {means!r}")
        clusters = (np.arange(k) * self.p) // k
        super().__init__(mu, self.sigma, rho, clusters)

    def params(self):
        return {"k": self.k, "p": self.p, "rho": self.rho, "delta": self.delta, "sigma": self.sigma,
                "means": self.means_kind, "means_seed": self.means_seed}
