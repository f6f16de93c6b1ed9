"""Forward-gradient estimators: layer-wise likelihood ratio and SPSA/MeZO two-point.

Both estimate the gradient of the batch-mean loss from forward passes only. A
*query unit* is what one point receives per allocation unit: an antithetic pair
(2 forward passes) or a single noisy pass (1). ``query(closure, counts, gen)``
gives point i ``counts[i]`` units and returns :class:`QueryStats`: per-point sums
of the unit estimates, their squared norms and counts, from which the batch
gradient (1/B) sum_i S_i/n_i and each point's single-unit variance trace
v_i = E||ghat_i - g_i||^2 follow.

``closure(index)`` must return the per-example losses (shape ``(len(index),)``)
of the batch rows ``index`` (a LongTensor that may repeat rows), evaluated with
the model's current parameters; it is called under ``torch.no_grad``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from rands.errors import ParameterError

__all__ = ["QueryStats", "LayerwiseLR", "SPSA", "Closure"]

Closure = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class QueryStats:
    """Per-point sufficient statistics of unit gradient estimates.

    sums[k] : (B, *shape_k) sum over a point's units of its estimate for target k.
    sumsq : (B,) sum over units of the squared norm (all targets together).
    n : (B,) units. passes : forward passes spent.
    """

    sums: list[torch.Tensor]
    sumsq: torch.Tensor
    n: torch.Tensor
    passes: int = 0
    loss_sum: torch.Tensor | None = field(default=None)

    def add(self, other: "QueryStats") -> "QueryStats":
        return QueryStats([a + b for a, b in zip(self.sums, other.sums)], self.sumsq + other.sumsq,
                          self.n + other.n, self.passes + other.passes,
                          None if self.loss_sum is None else self.loss_sum + other.loss_sum)

    def point_variances(self) -> torch.Tensor:
        """Unbiased single-unit variance trace of each point (nan where n < 2)."""
        n = self.n.to(torch.float64)
        sq_mean = torch.zeros_like(n)
        for s in self.sums:
            sq_mean += s.reshape(s.shape[0], -1).to(torch.float64).pow(2).sum(1)
        with torch.no_grad():
            v = (self.sumsq.to(torch.float64) - sq_mean / n.clamp(min=1)) / (n - 1)
        v = torch.where(n >= 2, v.clamp(min=0.0), torch.full_like(v, float("nan")))
        return v

    def point_second_moments(self) -> torch.Tensor:
        """Mean squared norm of a point's unit estimates, E||ghat||^2 = v_i + ||g_i||^2 (nan where n = 0).

        A proxy for v_i available from one unit: for forward gradients v_i dominates
        ||g_i||^2 (by about the perturbation dimension), so sqrt of it ranks points as sqrt(v_i) does.
        """
        n = self.n.to(torch.float64)
        m = self.sumsq.to(torch.float64) / n.clamp(min=1)
        return torch.where(n >= 1, m, torch.full_like(m, float("nan")))

    def gradient(self) -> list[torch.Tensor]:
        """(1/B) sum_i S_i / n_i for each target (points with n_i = 0 contribute 0)."""
        b = self.n.shape[0]
        w = torch.where(self.n > 0, 1.0 / self.n.clamp(min=1).to(self.sumsq.dtype), torch.zeros(()))
        return [(s * w.view(-1, *([1] * (s.dim() - 1)))).sum(0) / b for s in self.sums]


def _empty(shapes, b: int, dtype) -> QueryStats:
    return QueryStats([torch.zeros((b, *s), dtype=dtype) for s in shapes], torch.zeros(b, dtype=dtype),
                      torch.zeros(b, dtype=torch.long), 0, torch.zeros(b, dtype=dtype))


class LayerwiseLR:
    """Layer-wise likelihood-ratio (ULR) estimator with noise in pre-activations.

    Forward hooks on every ``nn.Linear`` of ``model`` whose weight requires grad add
    sigma*eps to the layer output (eps ~ N(0, I), one draw per row and token). For a
    point with loss l(eps), Stein's identity gives E[(l - beta) eps/sigma] x^T as the
    gradient of the smoothed loss w.r.t. W (Jiang et al. 2023, arXiv 2305.08960):
    unbiased for the Gaussian-smoothed loss, O(sigma^2) from the true gradient.
    ``antithetic`` uses pairs (eps, -eps): a unit is a pair, estimate
    eps/sigma (a x+ - b x-)^T / 2 with a = l+ - beta, b = l- - beta. ``baseline``:
    "none" (beta = 0) or "clean" (beta = the point's noise-free loss, which must be
    passed to :meth:`query`; independent of the noise, so still unbiased).
    Only Linear layers are estimated (their weight and bias); other parameters get
    no estimate.
    """

    name = "lr"

    def __init__(self, model: nn.Module, *, sigma: float = 1e-2, antithetic: bool = True,
                 baseline: str = "none") -> None:
        if not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ParameterError(f"sigma must be a positive number, got {sigma!r}")
        if baseline not in ("none", "clean"):
            raise ParameterError(f"baseline must be 'none' or 'clean', got {baseline!r}")
        self.model = model
        self.sigma = float(sigma)
        self.antithetic = bool(antithetic)
        self.baseline = baseline
        self.layers = [m for m in model.modules() if isinstance(m, nn.Linear) and m.weight.requires_grad]
        if not self.layers:
            raise ParameterError("model has no trainable nn.Linear layer for the LR estimator")
        self.unit = 2 if self.antithetic else 1
        self.needs_clean = baseline == "clean"

    def targets(self) -> list[torch.Tensor]:
        """The parameters estimated, in the order of ``QueryStats.sums`` after splitting."""
        out = []
        for m in self.layers:
            out.append(m.weight)
            if m.bias is not None:
                out.append(m.bias)
        return out

    def _shapes(self):
        return [(m.out_features, m.in_features + 1) for m in self.layers]

    def split(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Map per-layer (out, in+1) tensors to [weight, bias, ...] in ``targets`` order."""
        out = []
        for m, t in zip(self.layers, tensors):
            out.append(t[..., :-1])
            if m.bias is not None:
                out.append(t[..., -1])
        return out

    @torch.no_grad()
    def query(self, closure: Closure, counts: torch.Tensor, gen: torch.Generator,
              clean: torch.Tensor | None = None) -> QueryStats:
        counts = torch.as_tensor(counts, dtype=torch.long)
        b = counts.shape[0]
        dtype = self.layers[0].weight.dtype
        stats = _empty(self._shapes(), b, dtype)
        units = int(counts.sum())
        if units == 0:
            return stats
        point = torch.repeat_interleave(torch.arange(b), counts)          # unit -> point
        rows = point.repeat_interleave(self.unit)                          # row -> point
        sign = torch.tensor([1.0, -1.0], dtype=dtype).repeat(units) if self.antithetic else None
        saved: list[tuple[torch.Tensor, torch.Tensor]] = []
        sigma = self.sigma

        def hook(mod, inputs, output):
            x = inputs[0]
            shape_u = (units, *output.shape[1:])
            eps = torch.randn(shape_u, generator=gen, dtype=output.dtype)
            e_rows = eps.repeat_interleave(self.unit, 0)
            if sign is not None:
                e_rows = e_rows * sign.view(-1, *([1] * (e_rows.dim() - 1)))
            saved.append((x.detach(), eps))
            return output + sigma * e_rows

        handles = [m.register_forward_hook(hook) for m in self.layers]
        try:
            losses = closure(rows).detach().to(dtype).reshape(-1)
        finally:
            for h in handles:
                h.remove()
        if losses.shape[0] != rows.shape[0]:
            raise ParameterError(f"closure returned {losses.shape[0]} losses for {rows.shape[0]} rows; "
                                 "it must return one loss per requested row")
        if len(saved) != len(self.layers):
            raise ParameterError("each trainable Linear layer must run exactly once per forward pass")
        beta = torch.zeros(units, dtype=dtype)
        if self.baseline == "clean":
            if clean is None:
                raise ParameterError("baseline='clean' needs the clean per-point losses")
            beta = clean.to(dtype)[point]
        if self.antithetic:
            lp, lm = losses[0::2] - beta, losses[1::2] - beta
        else:
            lp = losses - beta
        for layer_id, (x, eps) in enumerate(saved):
            x1 = torch.cat([x, torch.ones((*x.shape[:-1], 1), dtype=x.dtype)], -1)
            x1 = x1.reshape(x1.shape[0], -1, x1.shape[-1])                 # (rows, T, in+1)
            e = eps.reshape(units, -1, eps.shape[-1]) / sigma               # (units, T, out)
            if self.antithetic:
                w = 0.5 * (lp.view(-1, 1, 1) * x1[0::2] - lm.view(-1, 1, 1) * x1[1::2])
            else:
                w = lp.view(-1, 1, 1) * x1
            g = torch.einsum("uto,uti->uoi", e, w)                          # unit estimates
            stats.sums[layer_id].index_add_(0, point, g)
            stats.sumsq.index_add_(0, point, g.pow(2).sum((1, 2)))
        stats.n += counts
        stats.passes = int(rows.shape[0])
        stats.loss_sum = torch.zeros(b, dtype=dtype).index_add_(0, rows, losses) / self.unit
        return stats

    def gradient(self, stats: QueryStats) -> list[torch.Tensor]:
        return self.split(stats.gradient())


class SPSA:
    """SPSA / MeZO two-point estimator over any parameters (model-agnostic).

    Unit k of a point: ((L(theta + eps z_k) - L(theta - eps z_k)) / (2 eps)) z_k with
    z_k ~ N(0, I) over all ``params`` (Spall 1992; Malladi et al. 2023, MeZO). Round k
    perturbs the parameters in place once and evaluates every point that has >= k
    units, so points share directions within a step (as MeZO shares one z across
    the batch); a point's units use independent directions. Unbiased for the
    gradient of the Gaussian-smoothed loss; 2 forward passes per unit.
    """

    name = "spsa"
    unit = 2
    needs_clean = False

    def __init__(self, params, *, eps: float = 1e-3) -> None:
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ParameterError(f"eps must be a positive number, got {eps!r}")
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ParameterError("SPSA needs at least one parameter with requires_grad")
        self.eps = float(eps)

    def targets(self) -> list[torch.Tensor]:
        return list(self.params)

    @torch.no_grad()
    def query(self, closure: Closure, counts: torch.Tensor, gen: torch.Generator,
              clean: torch.Tensor | None = None) -> QueryStats:
        counts = torch.as_tensor(counts, dtype=torch.long)
        b = counts.shape[0]
        dtype = self.params[0].dtype
        stats = _empty([tuple(p.shape) for p in self.params], b, dtype)
        kmax = int(counts.max()) if b else 0
        originals = [p.detach().clone() for p in self.params]
        passes = 0
        try:
            for k in range(kmax):
                idx = torch.nonzero(counts > k).flatten()
                z = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in self.params]
                for p, p0, zz in zip(self.params, originals, z):
                    p.copy_(p0 + self.eps * zz)
                lp = closure(idx).detach().to(dtype).reshape(-1)
                for p, p0, zz in zip(self.params, originals, z):
                    p.copy_(p0 - self.eps * zz)
                lm = closure(idx).detach().to(dtype).reshape(-1)
                if lp.shape[0] != idx.shape[0] or lm.shape[0] != idx.shape[0]:
                    raise ParameterError("closure must return one loss per requested row")
                d = (lp - lm) / (2 * self.eps)
                znorm2 = sum(zz.pow(2).sum() for zz in z)
                for s, zz in zip(stats.sums, z):
                    s.index_add_(0, idx, d.view(-1, *([1] * zz.dim())) * zz.unsqueeze(0))
                stats.sumsq.index_add_(0, idx, d.pow(2) * znorm2)
                stats.loss_sum.index_add_(0, idx, 0.5 * (lp + lm))
                passes += 2 * idx.shape[0]
        finally:
            for p, p0 in zip(self.params, originals):
                p.copy_(p0)
        stats.n += counts
        stats.passes = passes
        return stats

    def gradient(self, stats: QueryStats) -> list[torch.Tensor]:
        return stats.gradient()
