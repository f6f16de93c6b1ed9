"""Mixed Value-at-Risk (MVaR): exact values, score-function weights, quantiles.

MVaR(X) = sum_i w_i RVaR_{a_i,b_i}(X) / sum_i w_i with
RVaR_{a,b}(X) = 1/(b-a) int_a^b F^{-1}(u) du and CVaR_a = RVaR_{0,a} (lower tail).
RiskPO's released objective (arXiv 2510.00911, official code RTkenny/RiskPO) is
[w CVaR_alpha + RVaR_{alpha,beta}] / (1 + w) with alpha=0.2, beta=0.8, w=1.5:
``released_terms()``.

Score-function gradient (Tamar, Glassner & Mannor, arXiv 1404.3862, for CVaR;
RVaR by int_a^b = b CVaR_b - a CVaR_a):
    grad RVaR_{a,b} = E[g_{a,b}(X) grad log p(X)],
    g_{a,b}(x) = [clip(x, q_a, q_b) - c] / (b - a),
with q_0 = -inf, q_1 = +inf and any constant c (a baseline). RiskPO's code uses
c = q_b ("natural baseline": g <= 0) or c = q_a (g >= 0) for the band and c = q_a
for the CVaR term (g = -(q_a - x)^+ / a). The identity is exact when no level a,
b sits on an atom boundary of a discrete F (tested against finite differences).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ...errors import ParameterError


@dataclass(frozen=True)
class RiskTerm:
    """One RVaR_{lo,hi} term with weight ``weight`` (lo = 0 is CVaR_hi, the lower tail)."""

    lo: float
    hi: float
    weight: float

    def __post_init__(self):
        if not (0.0 <= self.lo < self.hi <= 1.0):
            raise ParameterError(f"risk term levels must satisfy 0 <= lo < hi <= 1, got lo={self.lo}, hi={self.hi}")
        if not (self.weight >= 0.0 and math.isfinite(self.weight)):
            raise ParameterError(f"risk term weight must be finite and >= 0, got {self.weight}")


def released_terms(alpha: float = 0.2, beta: float = 0.8, w: float = 1.5) -> tuple[RiskTerm, ...]:
    """RiskPO's released MVaR: [w CVaR_alpha + RVaR_{alpha,beta}] / (1 + w)."""
    return (RiskTerm(0.0, alpha, w), RiskTerm(alpha, beta, 1.0))


def check_terms(terms: Sequence[RiskTerm]) -> tuple[RiskTerm, ...]:
    terms = tuple(terms)
    if not terms or not all(isinstance(t, RiskTerm) for t in terms):
        raise ParameterError("terms must be a non-empty sequence of RiskTerm(lo, hi, weight)")
    if sum(t.weight for t in terms) <= 0:
        raise ParameterError("risk term weights must not all be 0")
    return terms


def levels_of(terms: Sequence[RiskTerm]) -> list[float]:
    """Interior quantile levels the terms need (0 and 1 excluded), sorted."""
    return sorted({x for t in terms for x in (t.lo, t.hi) if 0.0 < x < 1.0})


# ------------------------------------------------------------------ exact values
def exact_rvar(values: np.ndarray, probs: np.ndarray, lo: float, hi: float) -> float:
    """RVaR_{lo,hi} of a discrete distribution: 1/(hi-lo) int_lo^hi F^{-1}(u) du (exact)."""
    v = np.asarray(values, float)
    p = np.asarray(probs, float)
    order = np.argsort(v)
    v, p = v[order], p[order]
    right = np.cumsum(p)
    left = right - p
    overlap = np.clip(np.minimum(right, hi) - np.maximum(left, lo), 0.0, None)
    return float((overlap * v).sum() / (hi - lo))


def exact_mvar(values: np.ndarray, probs: np.ndarray, terms: Sequence[RiskTerm]) -> float:
    terms = check_terms(terms)
    tot = sum(t.weight for t in terms)
    return sum(t.weight * exact_rvar(values, probs, t.lo, t.hi) for t in terms) / tot


def exact_quantile(values: np.ndarray, probs: np.ndarray, u: float) -> float:
    """Lower quantile F^{-1}(u) = inf{x : F(x) >= u} of a discrete distribution."""
    v = np.asarray(values, float)
    order = np.argsort(v)
    cdf = np.cumsum(np.asarray(probs, float)[order])
    return float(v[order][min(np.searchsorted(cdf, u - 1e-12), len(v) - 1)])


def empirical_mvar(x: torch.Tensor, terms: Sequence[RiskTerm]) -> torch.Tensor:
    """MVaR of the empirical distribution of the last axis of ``x`` (each point mass 1/n)."""
    terms = check_terms(terms)
    xs, _ = torch.sort(x, dim=-1)
    n = xs.shape[-1]
    right = torch.arange(1, n + 1, dtype=xs.dtype) / n
    left = right - 1.0 / n
    out = torch.zeros(xs.shape[:-1], dtype=xs.dtype)
    for t in terms:
        ov = (torch.minimum(right, torch.tensor(t.hi, dtype=xs.dtype))
              - torch.maximum(left, torch.tensor(t.lo, dtype=xs.dtype))).clamp_min(0)
        out = out + t.weight * (ov * xs).sum(-1) / (t.hi - t.lo)
    return out / sum(t.weight for t in terms)


# ------------------------------------------------------------------ weights
def mvar_weights(x: torch.Tensor, quantiles: dict[float, torch.Tensor], terms: Sequence[RiskTerm], *,
                 natural_baseline: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Score-function weights g(x) of MVaR (see module docstring), elementwise in ``x``.

    ``quantiles[u]`` is q_u, broadcastable against x (per bundle, per batch or tracked).
    Baselines: a CVaR term (lo = 0) uses c = q_hi (g = -(q_hi - x)^+ / hi); a term with
    hi = 1 uses c = q_lo; any other band uses c = q_hi if ``natural_baseline`` (g <= 0)
    else c = q_lo (g >= 0), as in the official code. Returns (g, per-term parts).
    """
    terms = check_terms(terms)
    tot = sum(t.weight for t in terms)
    g = torch.zeros_like(x)
    parts = {}
    for t in terms:
        q_lo = quantiles[t.lo] if t.lo > 0 else None
        q_hi = quantiles[t.hi] if t.hi < 1 else None
        c = x
        if q_lo is not None:
            c = torch.maximum(c, q_lo)
        if q_hi is not None:
            c = torch.minimum(c, q_hi)
        if q_lo is None:
            base = q_hi
        elif q_hi is None:
            base = q_lo
        else:
            base = q_hi if natural_baseline else q_lo
        part = (c - base) / (t.hi - t.lo)
        parts[f"rvar_{t.lo:g}_{t.hi:g}"] = part
        g = g + t.weight * part
    return g / tot, parts


# ------------------------------------------------------------------ quantiles
def linear_quantiles(x: torch.Tensor, levels: Sequence[float], dim: int = -1) -> dict[float, torch.Tensor]:
    """Linear-interpolation sample quantiles (numpy/torch 'linear', as the official code) along ``dim``."""
    lv = torch.tensor(list(levels), dtype=x.dtype)
    q = torch.quantile(x, lv, dim=dim, keepdim=True)
    return {float(u): q[i] for i, u in enumerate(levels)}


class QuantileTracker:
    """Two-timescale stochastic-approximation quantile tracker (Robbins-Monro on the pinball loss).

    q_u <- q_u + lr_t (u - mean_j 1{X_j < q_u}), lr_t = lr / (1 + t)^decay, pooled over all
    bundle scores of a batch; the first update warm-starts q from the batch's empirical
    quantiles. Only the counts of 1{X < q_u} and the batch size enter, so a distributed
    run passes ``allreduce`` (a function summing a float64 tensor across ranks in place
    or returning the sum) and every rank keeps identical state. Origin: QPO/QPPO (Jiang,
    Hu & Peng, arXiv 2201.11463, 2305.07248); RiskPO code uses 19 levels and lr = 0.1.
    With decay in (0.5, 1] the iterates converge a.s. to the u-quantile of a continuous
    stationary distribution; with decay = 0 they fluctuate around it with O(sqrt(lr)) spread.
    """

    def __init__(self, levels: Sequence[float] = tuple(np.round(np.arange(1, 20) * 0.05, 2)), lr: float = 0.1,
                 decay: float = 0.0):
        lv = sorted({float(u) for u in levels})
        if not lv or any(not (0.0 < u < 1.0) for u in lv):
            raise ParameterError(f"levels must lie in (0, 1), got {levels!r}")
        if not (lr > 0 and math.isfinite(lr)):
            raise ParameterError(f"lr must be > 0, got {lr}")
        if not (0.0 <= decay <= 1.0):
            raise ParameterError(f"decay must be in [0, 1], got {decay}")
        self.levels = np.array(lv)
        self.lr = float(lr)
        self.decay = float(decay)
        self.q: np.ndarray | None = None
        self.t = 0

    def add_levels(self, levels: Sequence[float]) -> None:
        if self.q is not None:
            raise ParameterError("levels can only be added before the first update")
        self.levels = np.array(sorted(set(self.levels.tolist()) | {float(u) for u in levels}))

    @property
    def initialized(self) -> bool:
        return self.q is not None

    def update(self, x, allreduce: Callable | None = None) -> None:
        xs = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
        if self.q is None:
            if allreduce is not None:
                raise ParameterError("warm start needs a first batch per rank without allreduce; "
                                     "call warm_start(global_scores) or set q before distributed updates")
            self.q = torch.quantile(xs, torch.as_tensor(self.levels)).numpy().copy()
            self.t = 1
            return
        q = torch.as_tensor(self.q)
        stats = torch.cat([(xs[None, :] < q[:, None]).sum(1).to(torch.float64),
                           torch.tensor([float(xs.numel())], dtype=torch.float64)])
        if allreduce is not None:
            out = allreduce(stats)
            stats = stats if out is None else out
        frac = (stats[:-1] / stats[-1]).numpy()
        step = self.lr / (1.0 + self.t) ** self.decay
        self.q = self.q + step * (self.levels - frac)
        self.t += 1

    def warm_start(self, x) -> None:
        self.q = None
        self.update(x)

    def quantile(self, u: float) -> float:
        """Tracked q_u at the nearest tracked level."""
        if self.q is None:
            raise ParameterError("the tracker has no estimate yet: call update() first")
        return float(self.q[int(np.argmin(np.abs(self.levels - u)))])

    def state_dict(self) -> dict:
        """JSON-serialisable state (levels, q, t, lr, decay) for checkpoints."""
        return {"levels": self.levels.tolist(), "q": None if self.q is None else self.q.tolist(),
                "t": int(self.t), "lr": self.lr, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.levels = np.asarray(state["levels"], float)
        self.q = None if state["q"] is None else np.asarray(state["q"], float)
        self.t = int(state["t"])
        self.lr = float(state["lr"])
        self.decay = float(state["decay"])
