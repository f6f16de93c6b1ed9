"""Per-step strategy maps, the coverage check, and the RLR choice of h and j.

The gradient of E[R(x_0)] is a sum over the occurrences of theta, one per
sampling step (step t maps x_t to x_{t-1}; step 1 produces x_0). An estimator
is a list of *terms*, each estimating the contribution of a set of steps:

``FO(K)``     first order: backprop R(x_0) through steps K..1 (pathwise);
              covers steps {1..K}. Full backprop is FO(T); DRaFT-K/AlignProp is
              FO(K) alone (steps K+1..T are *truncated*: not covered).
``HO(j, h)``  half order (RLR): re-run steps j+h-1..j with the graph (inner
              noises fixed, x_{j+h-1} detached), likelihood ratio at the noise of
              step j: R * (d mean_j / d theta)^T z_j / sigma_j^2. Covers {j..j+h-1}.
              ``HO(t, 1)`` is the per-step likelihood ratio of DDPO (REINFORCE).
``ZO(S)``     parameter-perturbation zeroth order at the steps in S: the step
              runs with theta + sigma_p * delta, estimate R * delta / sigma_p.
              Unbiased for the *parameter-smoothed* objective only.

Index convention: the paper writes the sub-chain as {j, ..., j+h} (h+1 steps)
while calling it h-length; here h is the number of steps covered.

Coverage (the unbiasedness certificate): the estimator is unbiased for
grad E[R] iff every step is covered exactly once, for every map in the support
of a random plan (RLR's j may follow any distribution, Thm 6.3 of
arXiv 2502.00639). :func:`check_coverage` counts, and reports missing steps
(truncation bias, Prop. 6.1) and double-counted steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from rands.errors import ParameterError, check_float, check_int

__all__ = ["FO", "HO", "LR", "ZO", "Coverage", "coverage_counts", "check_coverage", "Plan", "FixedPlan",
           "RLRPlan", "RandomTruncationPlan", "RandomStepsPlan", "StepNorms", "h_from_budget"]


@dataclass(frozen=True)
class FO:
    """First-order backprop of the reward through the last K steps (covers 1..K)."""
    K: int

    def steps(self) -> tuple[int, ...]:
        return tuple(range(1, self.K + 1))


@dataclass(frozen=True)
class HO:
    """Half-order sub-chain: steps j..j+h-1 in the graph, likelihood ratio at z_j."""
    j: int
    h: int = 1

    def steps(self) -> tuple[int, ...]:
        return tuple(range(self.j, self.j + self.h))


def LR(t: int) -> HO:
    """Per-step likelihood ratio on the sampler's own noise (DDPO term) = HO(t, 1)."""
    return HO(t, 1)


@dataclass(frozen=True)
class ZO:
    """Parameter-perturbation zeroth order at the given steps."""
    steps_: tuple[int, ...]

    def steps(self) -> tuple[int, ...]:
        return tuple(self.steps_)


Term = FO | HO | ZO


@dataclass
class Coverage:
    """Result of a coverage check over every map in a plan's support."""
    counts: np.ndarray            # (n_maps, T) times each step is covered
    missing: list[int]            # steps uncovered in some map
    doubled: list[int]            # steps covered more than once in some map
    smoothed: bool                # some step uses parameter ZO (unbiased for the smoothed objective)
    noiseless_lr: list[int] = field(default_factory=list)  # LR/HO at a step with sigma = 0

    @property
    def unbiased(self) -> bool:
        return not self.missing and not self.doubled and not self.noiseless_lr

    def describe(self) -> str:
        if self.unbiased:
            return "unbiased" + (" (for the parameter-smoothed objective)" if self.smoothed else "")
        parts = []
        if self.missing:
            parts.append(f"steps {self.missing} not estimated (truncated: biased)")
        if self.doubled:
            parts.append(f"steps {self.doubled} estimated more than once (double count: biased)")
        if self.noiseless_lr:
            parts.append(f"likelihood ratio at noiseless steps {self.noiseless_lr} (sigma = 0: invalid)")
        return "biased: " + "; ".join(parts)


def _check_term(term, T: int) -> None:
    if isinstance(term, FO):
        check_int("FO.K", term.K, low=1, high=T)
    elif isinstance(term, HO):
        check_int("HO.j", term.j, low=1, high=T)
        check_int("HO.h", term.h, low=1, high=T - term.j + 1)
    elif isinstance(term, ZO):
        for s in term.steps_:
            check_int("ZO step", s, low=1, high=T)
    else:
        raise ParameterError(f"a term must be FO, HO (LR) or ZO, got {term!r}")


def coverage_counts(terms: Sequence[Term], T: int) -> np.ndarray:
    """How many terms estimate each step 1..T (position t-1)."""
    c = np.zeros(T, dtype=np.int64)
    for term in terms:
        _check_term(term, T)
        for s in term.steps():
            c[s - 1] += 1
    return c


def check_coverage(plan, T: int, sigma: Sequence[float] | None = None, *, require: bool = False) -> Coverage:
    """Coverage of every map in ``plan``'s support (a Plan or a list of terms).

    With ``require=True`` a biased plan raises ParameterError naming the steps.
    ``sigma`` (per step, position t-1) flags likelihood ratios at noiseless steps.
    """
    maps = plan.support(T) if isinstance(plan, Plan) else [list(plan)]
    counts = np.stack([coverage_counts(m, T) for m in maps])
    missing = sorted({int(s) + 1 for s in np.nonzero((counts == 0).any(0))[0]})
    doubled = sorted({int(s) + 1 for s in np.nonzero((counts > 1).any(0))[0]})
    smoothed = any(isinstance(t, ZO) and t.steps_ for m in maps for t in m)
    noiseless = []
    if sigma is not None:
        sig = np.asarray(sigma, dtype=np.float64)
        noiseless = sorted({term.j for m in maps for term in m if isinstance(term, HO) and sig[term.j - 1] <= 0})
    cov = Coverage(counts, missing, doubled, smoothed, noiseless)
    if require and not cov.unbiased:
        raise ParameterError(f"strategy map is {cov.describe()}")
    return cov


class Plan:
    """A distribution over strategy maps: ``sample(rng, T)`` -> terms, ``support(T)`` -> all maps."""

    def sample(self, rng: np.random.Generator, T: int) -> list:
        raise NotImplementedError

    def support(self, T: int) -> list[list]:
        raise NotImplementedError

    def update(self, term_norms: dict) -> None:
        """Feedback after an estimate (used by adaptive j); default: nothing."""


class FixedPlan(Plan):
    def __init__(self, terms_fn):
        """``terms_fn(T) -> list of terms`` (a function of T so one plan fits any chain length)."""
        self.terms_fn = terms_fn

    def sample(self, rng, T):
        return list(self.terms_fn(T))

    def support(self, T):
        return [list(self.terms_fn(T))]


class RandomTruncationPlan(Plan):
    """FO(K) with K uniform on [k_min, k_max] (AlignProp/DRaFT random truncation): biased."""

    def __init__(self, k_min: int = 1, k_max: int | None = None):
        self.k_min = check_int("k_min", k_min, low=1)
        self.k_max = k_max

    def _range(self, T):
        hi = T if self.k_max is None else min(int(self.k_max), T)
        return range(self.k_min, hi + 1)

    def sample(self, rng, T):
        ks = list(self._range(T))
        return [FO(int(ks[rng.integers(len(ks))]))]

    def support(self, T):
        return [[FO(k)] for k in self._range(T)]


class RandomStepsPlan(Plan):
    """FO(fo) + LR at ``n`` distinct steps drawn uniformly from fo+1..T (the released RLR code's
    structure: last-step FO plus a few random single-step PPO terms). Biased when n < T - fo."""

    def __init__(self, n: int = 2, fo: int = 1):
        self.n = check_int("n", n, low=1)
        self.fo = check_int("fo", fo, low=0)

    def sample(self, rng, T):
        pool = np.arange(self.fo + 1, T + 1)
        pick = rng.choice(pool, size=min(self.n, pool.size), replace=False)
        return ([FO(self.fo)] if self.fo else []) + [LR(int(t)) for t in sorted(pick)]

    def support(self, T):
        import itertools
        pool = range(self.fo + 1, T + 1)
        return [([FO(self.fo)] if self.fo else []) + [LR(t) for t in c]
                for c in itertools.combinations(pool, min(self.n, len(pool)))]


class StepNorms:
    """Running (exponential moving average) norms of the HO gradient per start step j."""

    def __init__(self, T: int, decay: float = 0.9, init: float = 1.0):
        self.decay = check_float("decay", decay, low=0.0, high=1.0, high_open=True)
        self.norms = np.full(T, float(init))
        self.seen = np.zeros(T, dtype=np.int64)

    def observe(self, j: int, norm: float) -> None:
        i = j - 1
        self.norms[i] = norm if self.seen[i] == 0 else self.decay * self.norms[i] + (1 - self.decay) * norm
        self.seen[i] += 1


class RLRPlan(Plan):
    """RLR, eq. 6 of arXiv 2502.00639: FO on the last ``fo`` steps, one HO sub-chain of h steps
    starting at j, and a ``fill`` strategy ("lr": per-step likelihood ratio on the sampler's noise,
    unbiased; "zo": parameter perturbation, the paper's literal choice, unbiased for the smoothed
    objective) on every other step. j is uniform over the valid starts, or within ``band`` = (a, b),
    or drawn from softmax(running per-step HO gradient norms / temperature) (paper §3.3).

    Unbiased for every j, hence for any distribution of j (Thm 6.3).
    """

    def __init__(self, h: int = 2, *, fo: int = 1, fill: str = "lr", j: str = "uniform",
                 band: tuple[int, int] | None = None, temperature: float | None = None,
                 norms: StepNorms | None = None):
        self.h = check_int("h", h, low=1)
        self.fo = check_int("fo", fo, low=0)
        if fill not in ("lr", "zo"):
            raise ParameterError(f"fill must be 'lr' or 'zo', got {fill!r}")
        if j not in ("uniform", "softmax"):
            raise ParameterError(f"j must be 'uniform' or 'softmax', got {j!r}")
        self.fill, self.j_rule, self.band = fill, j, band
        self.temperature = None if temperature is None else check_float("temperature", temperature, low=0,
                                                                        low_open=True)
        self.norms = norms

    def starts(self, T: int) -> np.ndarray:
        lo, hi = self.fo + 1, T - self.h + 1
        if self.band is not None:
            a, b = self.band
            lo, hi = max(lo, int(a)), min(hi, int(b))
        if hi < lo:
            raise ParameterError(f"no valid HO start j for T={T}, h={self.h}, fo={self.fo}, band={self.band}")
        return np.arange(lo, hi + 1)

    def probabilities(self, T: int) -> np.ndarray:
        js = self.starts(T)
        if self.j_rule == "uniform":
            return np.full(js.size, 1.0 / js.size)
        if self.norms is None:
            self.norms = StepNorms(T)
        v = self.norms.norms[js - 1]
        tau = self.temperature if self.temperature is not None else max(float(np.mean(v)), 1e-12)
        z = (v - v.max()) / tau
        p = np.exp(z)
        return p / p.sum()

    def terms_for(self, j: int, T: int) -> list:
        terms: list = [FO(self.fo)] if self.fo else []
        terms.append(HO(int(j), self.h))
        rest = [t for t in range(self.fo + 1, T + 1) if not (j <= t < j + self.h)]
        if self.fill == "lr":
            terms += [LR(t) for t in rest]
        elif rest:
            terms.append(ZO(tuple(rest)))
        return terms

    def sample(self, rng, T):
        js = self.starts(T)
        j = int(js[rng.choice(js.size, p=self.probabilities(T))])
        self.last_j = j
        return self.terms_for(j, T)

    def support(self, T):
        return [self.terms_for(int(j), T) for j in self.starts(T)]

    def update(self, term_norms: dict) -> None:
        if self.j_rule != "softmax":
            return
        for term, nrm in term_norms.items():
            if isinstance(term, HO) and term.h == self.h and self.norms is not None:
                self.norms.observe(term.j, nrm)


def h_from_budget(budget: float, mem_ho: float, mem_zo: float, T: int,
                  var_ho: float | None = None, var_zo: float | None = None) -> int:
    """Sub-chain length from a memory budget (paper §3.3):

    h* = min{ floor((B - B_z (T-1)) / (B_h - B_z)),  floor(T V_z / (2 (V_z - V_h)) - 1) },

    the second term only when both variances are given and V_z > V_h. B_h, B_z are
    per-step memories of an HO (graph-holding) and a ZO step, measured with
    :func:`rands.applications.rlr.estimator.profile_step_memory`. Raises if the
    budget cannot hold even h = 1.
    """
    T = check_int("T", T, low=2)
    B = check_float("budget", budget, low=0, low_open=True)
    bh = check_float("mem_ho", mem_ho, low=0, low_open=True)
    bz = check_float("mem_zo", mem_zo, low=0)
    if bh <= bz:
        raise ParameterError(f"mem_ho ({bh}) must exceed mem_zo ({bz})")
    h = math.floor((B - bz * (T - 1)) / (bh - bz))
    if var_ho is not None and var_zo is not None and var_zo > var_ho:
        h = min(h, math.floor(T * var_zo / (2 * (var_zo - var_ho)) - 1))
    if h < 1:
        raise ParameterError(f"budget={B} is too small for one half-order step "
                             f"(needs >= {bh + bz * (T - 2):.4g})")
    return int(min(h, T - 1))
