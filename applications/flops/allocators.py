"""Allocators: how a batch's query budget is split across its points.

Every allocator spends exactly the units it is given (``units`` = query units left
after the clean forward pass, if any, was paid for) through ``query(counts)`` and
returns the pooled :class:`QueryStats`. Variance model and Neyman rule: see
``allocation.py``. FLOPS (Ren et al. 2025, arXiv 2410.05966) allocates more
queries to points with larger gradient-estimate variance; its learned allocator is
not public, so :class:`GaussianAllocator` is the labelled reconstruction of
shared/reference/flops.md section 4.

Bias of the two-stage Neyman estimate (``studies/flops/neyman_bias.md``: tiny MLP 4-3-3,
layer-wise LR, B = 400, 300 steps per cell; projection <ghat, g>/||g||^2 on the exact
gradient g, 1 = unbiased; +- one s.e.):

=============  =================  ==========================  ===============
units/point    uniform            Neyman, pilots reused       Neyman, pilots
                                  (``reuse_pilots=True``)     only allocate
=============  =================  ==========================  ===============
4              1.012 +- 0.014     0.815 +- 0.012 (z = -15)    0.978 +- 0.022
6              0.986 +- 0.012     0.906 +- 0.010 (z = -9)     0.996 +- 0.017
12             1.012 +- 0.008     0.973 +- 0.009 (z = -3)     1.011 +- 0.010
=============  =================  ==========================  ===============

The pilot-free allocators (uniform, loss, gaussian, bernoulli) are unbiased given the batch (tested in
``tests/test_flops.py`` with power against a 5% mis-scaling, as is the pilot-free two-stage Neyman).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from rands.errors import ParameterError, check_float, check_int

from .allocation import allocate, largest_remainder
from .estimators import QueryStats

__all__ = ["Allocator", "Uniform", "LossProportional", "TwoStageNeyman", "Bernoulli",
           "GaussianAllocator", "make_allocator", "ALLOCATORS"]

Query = Callable[[np.ndarray], QueryStats]


class Allocator:
    """Base class. ``needs_clean``: whether it reads the clean per-point losses
    (one extra forward pass per point, paid from the budget)."""

    name = "base"
    needs_clean = False
    floor = 1

    def min_units(self, b: int) -> int:
        """Fewest units this allocator needs for a batch of b points."""
        return self.floor * b

    def spend(self, units: int, b: int, query: Query, clean: torch.Tensor | None,
              gen: torch.Generator) -> QueryStats:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Uniform(Allocator):
    """Equal units per point (the leftover units go one each to the first points)."""

    name = "uniform"

    def spend(self, units, b, query, clean, gen):
        return query(allocate(np.ones(b), units, 1))


class LossProportional(Allocator):
    """q_i proportional to the clean loss l_i, floor ``floor`` (sqrt(v_i) ~ l_i for LR with a baseline)."""

    name = "loss"
    needs_clean = True

    def __init__(self, floor: int = 1) -> None:
        self.floor = check_int("floor", floor, low=1)

    def spend(self, units, b, query, clean, gen):
        w = clean.detach().double().clamp(min=0).numpy() + 1e-12
        return query(allocate(w, units, self.floor))


def _moment(stats: QueryStats, moment: str) -> torch.Tensor:
    v = stats.point_variances() if moment == "variance" else stats.point_second_moments()
    return torch.where(torch.isfinite(v), v.clamp(min=0), torch.zeros_like(v))


def _check_moment(moment: str, floor: int, name: str) -> str:
    if moment not in ("variance", "second"):
        raise ParameterError(f"moment must be 'variance' or 'second', got {moment!r}")
    if moment == "variance" and floor < 2:
        raise ParameterError(f"moment='variance' needs {name} >= 2 (a sample variance), got {floor}")
    return moment


class TwoStageNeyman(Allocator):
    """Pilot ``pilot`` units per point to estimate sds, then a Neyman allocation of the rest.

    ``reuse_pilots=False`` (default): the pilots only allocate. The remaining units go
    n_i = max(1, c*s_i) (Neyman allocation with floors; the OCBA/Neyman family of R&S) and
    the estimate uses those stage-2 units alone; they are independent of the pilots given
    the allocation, so the estimate is unbiased whatever the pilots were. The pilots' forward
    passes are still paid from the budget. ``reuse_pilots=True`` (the earlier behaviour) pools
    the pilot units into the estimate with totals n_i = max(pilot, c*s_i): the weight of a
    point's pilot draws then depends on those same draws, which biases the mean; on the tiny
    MLP of ``tests/test_flops.py`` (layer-wise LR, pilot 2) it shrinks the gradient by 9-10%
    along its direction at 6 units per point (18% at 4, 3% at 12; ``studies/flops/README.md``,
    where the unbiased default has 1.5-2.6x uniform's MSE on that model). Kept for comparison
    only. ``moment="variance"`` uses the pilot sample variances (pilot >= 2);
    ``"second"`` the pilot mean squared norms E||ghat||^2 = v_i + ||g_i||^2 (pilot >= 1,
    cheaper; see QueryStats.point_second_moments).
    """

    name = "neyman"

    def __init__(self, pilot: int = 2, moment: str = "variance", reuse_pilots: bool = False) -> None:
        self.pilot = check_int("pilot", pilot, low=1)
        self.moment = _check_moment(moment, self.pilot, "pilot")
        if not isinstance(reuse_pilots, (bool, np.bool_)):
            raise ParameterError(f"reuse_pilots must be True or False, got {reuse_pilots!r}")
        self.reuse_pilots = bool(reuse_pilots)
        self.floor = self.pilot if self.reuse_pilots else 1

    def min_units(self, b: int) -> int:
        return self.pilot * b if self.reuse_pilots else (self.pilot + 1) * b

    def spend(self, units, b, query, clean, gen):
        first = query(np.full(b, self.pilot, dtype=np.int64))
        sd = _moment(first, self.moment).sqrt().numpy()
        sd = np.where(np.isfinite(sd), sd, 0.0) + 1e-12
        if not self.reuse_pilots:
            second = query(allocate(sd, units - self.pilot * b, 1))
            return QueryStats(second.sums, second.sumsq, second.n, first.passes + second.passes, second.loss_sum)
        totals = allocate(sd, units, self.pilot)
        rest = totals - self.pilot
        if rest.sum() == 0:
            return first
        return first.add(query(rest))

    def __repr__(self):
        return f"TwoStageNeyman(pilot={self.pilot}, moment={self.moment!r}, reuse_pilots={self.reuse_pilots})"


class Bernoulli(Allocator):
    """The allocator of the public FLOPS code (``bernoulli_allocater``), reimplemented.

    Points whose clean loss is below the batch mean have their units halved with
    probability p (``p_early`` for the first ``switch`` steps, then ``p_late``;
    the code hard-codes 0.3 and 0.01 by epoch); the freed units are split equally
    among the other points and the remainder is spread at random.
    """

    name = "bernoulli"
    needs_clean = True

    def __init__(self, p_early: float = 0.3, p_late: float = 0.01, switch: int = 5) -> None:
        self.p_early = check_float("p_early", p_early, low=0.0, high=1.0)
        self.p_late = check_float("p_late", p_late, low=0.0, high=1.0)
        self.switch = check_int("switch", switch, low=0)
        self.steps = 0

    def spend(self, units, b, query, clean, gen):
        p = self.p_early if self.steps < self.switch else self.p_late
        self.steps += 1
        base = units // b
        q = np.full(b, base, dtype=np.int64)
        low = (clean < clean.mean()).numpy()
        coin = (torch.rand(b, generator=gen, dtype=torch.float64) < p).numpy()
        cut = low & coin & (base >= 2)
        q[cut] = base // 2
        others = np.flatnonzero(~cut)
        freed = int(base * b - q.sum())
        if others.size:
            q[others] += freed // others.size
        left = units - int(q.sum())
        if left > 0:
            pick = torch.randperm(b, generator=gen)[:left].numpy()
            q[pick] += 1
        return query(q)

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = int(state["steps"])


class GaussianAllocator(Allocator):
    """Learned Gaussian allocator (reconstruction of FLOPS' 4-parameter allocator).

    Given clean losses l_i (u_i = log l_i - mean log l, r_i = l_i / mean l):
    z ~ N(beta*u, K), K_ij = s^2 exp(-(r_i - r_j)^2 / (2 lam^2)) + 1e-6 delta_ij,
    sampled by reparameterization z = beta*u + chol(K) xi; shares
    pi = (1-w) softmax(z) + w/B with w = sigmoid(gamma); continuous allocation
    q_i = floor + (units - floor*B) pi_i, rounded by largest remainder.
    beta = 0 is uniform and beta = 1, w = 0, s = 0 is loss-proportional.
    Update: one Adam step on phi = (beta, gamma, log s, log lam) down the
    reparameterized gradient of the proxy J = sum_i vhat_i / q_i (the batch
    variance up to 1/B^2), with vhat_i the point's unbiased unit variance from
    this step's queries (``moment="variance"``, floor >= 2) or its mean squared
    norm (``moment="second"``, floor >= 1). The 4 parameters cost no model passes.
    """

    name = "gaussian"
    needs_clean = True

    def __init__(self, floor: int = 1, lr: float = 0.1, beta: float = 0.0, gamma: float = 0.0,
                 s: float = 0.3, lam: float = 1.0, moment: str = "second") -> None:
        self.floor = check_int("floor", floor, low=1)
        self.moment = _check_moment(moment, self.floor, "floor")
        self.lr = check_float("lr", lr, low=0.0, low_open=True)
        for nm, v in (("s", s), ("lam", lam)):
            check_float(nm, v, low=0.0, low_open=True)
        self.init = {"beta": float(beta), "gamma": float(gamma), "s": float(s), "lam": float(lam)}
        self.phi = torch.tensor([beta, gamma, np.log(s), np.log(lam)], dtype=torch.float64,
                                requires_grad=True)
        self.opt = torch.optim.Adam([self.phi], lr=self.lr)
        self.history: list[list[float]] = []

    def _continuous(self, units: int, b: int, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        l = clean.detach().double().clamp(min=1e-8)
        u = l.log() - l.log().mean()
        r = l / l.mean()
        beta, gamma, log_s, log_lam = self.phi
        d2 = (r.view(-1, 1) - r.view(1, -1)).pow(2)
        k = torch.exp(2 * log_s) * torch.exp(-d2 / (2 * torch.exp(2 * log_lam))) + 1e-6 * torch.eye(b, dtype=torch.float64)
        chol = torch.linalg.cholesky(k)
        xi = torch.randn(b, generator=gen, dtype=torch.float64)
        z = beta * u + chol @ xi
        w = torch.sigmoid(gamma)
        pi = (1 - w) * torch.softmax(z, 0) + w / b
        return self.floor + (units - self.floor * b) * pi

    def spend(self, units, b, query, clean, gen):
        with torch.enable_grad():
            q = self._continuous(units, b, clean, gen)
        counts = largest_remainder(q.detach().numpy(), units, self.floor)
        stats = query(counts)
        v = _moment(stats, self.moment).detach()
        scale = v.mean().clamp(min=1e-30)
        with torch.enable_grad():
            obj = (v / scale / q).sum() / b
            self.opt.zero_grad()
            obj.backward()
        self.opt.step()
        self.history.append(self.params())
        return stats

    def params(self) -> list[float]:
        beta, gamma, log_s, log_lam = self.phi.detach().tolist()
        return [beta, float(1 / (1 + np.exp(-gamma))), float(np.exp(log_s)), float(np.exp(log_lam))]

    def expected_counts(self, units: int, clean: torch.Tensor) -> np.ndarray:
        """Allocation at the mean (xi = 0), for diagnostics."""
        with torch.no_grad():
            l = clean.detach().double().clamp(min=1e-8)
            u = l.log() - l.log().mean()
            beta, gamma = self.phi[0], self.phi[1]
            w = torch.sigmoid(gamma)
            pi = (1 - w) * torch.softmax(beta * u, 0) + w / l.numel()
            return (self.floor + (units - self.floor * l.numel()) * pi).numpy()

    def state_dict(self):
        return {"phi": self.phi.detach().tolist(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state):
        with torch.no_grad():
            self.phi.copy_(torch.tensor(state["phi"], dtype=torch.float64))
        self.opt.load_state_dict(state["opt"])

    def __repr__(self):
        return f"GaussianAllocator(floor={self.floor}, lr={self.lr}, moment={self.moment!r})"


ALLOCATORS = {"uniform": Uniform, "loss": LossProportional, "neyman": TwoStageNeyman,
              "bernoulli": Bernoulli, "gaussian": GaussianAllocator}


def make_allocator(name: str, **params) -> Allocator:
    """Build an allocator by name: uniform, loss, neyman, bernoulli, gaussian."""
    if name not in ALLOCATORS:
        raise ParameterError(f"unknown allocator {name!r}; valid: {', '.join(ALLOCATORS)}")
    try:
        return ALLOCATORS[name](**params)
    except TypeError as exc:
        raise ParameterError(f"bad parameters for allocator {name!r}: {exc}") from None
