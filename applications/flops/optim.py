"""``ForwardGradient``: a torch.optim-style optimizer driven by forward passes only."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from rands.errors import ParameterError, check_int

from .allocators import Allocator, Uniform
from .estimators import LayerwiseLR, QueryStats, SPSA

__all__ = ["ForwardGradient"]


class ForwardGradient(torch.optim.Optimizer):
    """Forward-gradient optimizer with a query allocator.

    ``ForwardGradient(model.parameters(), estimator=LayerwiseLR(model), allocator=TwoStageNeyman(),
    queries=256, lr=1e-3)``; each ``step(closure, batch_size=B)`` spends at most
    ``queries`` forward passes (per-example passes, the allocator's clean pass
    included), writes the estimate into ``p.grad`` and applies the base update
    (``base="sgd"`` with ``momentum``, or ``"adam"``).

    ``closure(index)`` returns the per-example losses of batch rows ``index``
    (LongTensor, rows may repeat) with the current parameters; ``closure(None)``
    the losses of all B rows. Parameters the estimator does not cover (e.g.
    LayerNorm under the LR estimator) get no gradient and stay fixed.
    ``forward_passes`` counts every pass spent; ``last`` holds the last step's
    counts, per-point variance estimates and QueryStats.
    """

    def __init__(self, params, *, estimator, allocator: Allocator | None = None, queries: int,
                 lr: float = 1e-3, base: str = "adam", momentum: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        if not isinstance(estimator, (LayerwiseLR, SPSA)) and not hasattr(estimator, "query"):
            raise ParameterError(f"estimator must be LayerwiseLR, SPSA or provide query(); got {estimator!r}")
        if base not in ("sgd", "adam"):
            raise ParameterError(f"base must be 'sgd' or 'adam', got {base!r}")
        if not (lr > 0):
            raise ParameterError(f"lr must be > 0, got {lr}")
        self.queries = check_int("queries", queries, low=1)
        defaults = dict(lr=lr, momentum=momentum, betas=betas, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self.estimator = estimator
        self.allocator = allocator if allocator is not None else Uniform()
        self.base = base
        self.gen = generator if generator is not None else torch.Generator().manual_seed(0)
        mine = {id(p) for g in self.param_groups for p in g["params"]}
        self._targets = [t for t in estimator.targets() if id(t) in mine]
        if not self._targets:
            raise ParameterError("none of the optimizer's parameters is covered by the estimator")
        self.forward_passes = 0
        self.last: dict = {}

    def budget_units(self, b: int) -> tuple[int, int]:
        """(clean passes, query units) for a batch of b points under this budget."""
        clean = b if (self.allocator.needs_clean or getattr(self.estimator, "needs_clean", False)) else 0
        units = (self.queries - clean) // self.estimator.unit
        need = self.allocator.min_units(b)
        if units < need:
            raise ParameterError(
                f"queries={self.queries} leaves {units} units for {b} points after {clean} clean passes; "
                f"allocator {self.allocator!r} needs >= {need} (queries >= "
                f"{clean + need * self.estimator.unit})")
        return clean, units

    @torch.no_grad()
    def estimate(self, closure: Callable, batch_size: int) -> tuple[list[torch.Tensor], QueryStats, np.ndarray]:
        """Spend one step's budget; returns (gradient per estimator target, stats, counts)."""
        b = check_int("batch_size", batch_size, low=1)
        n_clean, units = self.budget_units(b)
        clean = None
        if n_clean:
            clean = closure(torch.arange(b)).detach().reshape(-1)
        calls: list[np.ndarray] = []

        def query(counts) -> QueryStats:
            counts = np.asarray(counts, dtype=np.int64)
            calls.append(counts)
            return self.estimator.query(closure, torch.as_tensor(counts), self.gen, clean=clean)

        stats = self.allocator.spend(units, b, query, clean, self.gen)
        spent = n_clean + stats.passes
        if spent > self.queries:
            raise RuntimeError(f"allocator {self.allocator!r} spent {spent} passes over the budget {self.queries}")
        self.forward_passes += spent
        counts = np.sum(calls, axis=0) if calls else np.zeros(b, dtype=np.int64)
        self.last = {"counts": counts, "clean": clean, "stats": stats, "passes": spent}
        return self.estimator.gradient(stats), stats, counts

    def step(self, closure: Callable, batch_size: int | None = None):
        """One update. Returns the mean noisy loss of the step's queries."""
        if closure is None:
            raise ParameterError("ForwardGradient.step needs a closure(index) -> per-example losses")
        if batch_size is None:
            with torch.no_grad():
                batch_size = int(closure(None).numel())
            self.forward_passes += batch_size
        grads, stats, _ = self.estimate(closure, batch_size)
        gmap = {id(t): g for t, g in zip(self.estimator.targets(), grads)}
        for group in self.param_groups:
            for p in group["params"]:
                g = gmap.get(id(p))
                p.grad = None if g is None else g.detach().to(p.dtype).reshape(p.shape).clone()
        self._update()
        n = stats.n.clamp(min=1).to(stats.loss_sum.dtype)
        return float((stats.loss_sum / n).mean())

    def state_dict(self) -> dict:
        """Base optimizer state plus the allocator's state, the pass count and the generator state."""
        d = super().state_dict()
        d["flops"] = {"allocator": self.allocator.state_dict(), "forward_passes": self.forward_passes,
                      "generator": self.gen.get_state()}
        return d

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("flops", None)
        super().load_state_dict(state_dict)
        if extra is not None:
            self.allocator.load_state_dict(extra["allocator"])
            self.forward_passes = int(extra["forward_passes"])
            self.gen.set_state(extra["generator"])

    @torch.no_grad()
    def _update(self) -> None:
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if wd:
                    g = g + wd * p
                st = self.state[p]
                if self.base == "sgd":
                    if group["momentum"]:
                        buf = st.get("momentum_buffer")
                        buf = g.clone() if buf is None else buf.mul_(group["momentum"]).add_(g)
                        st["momentum_buffer"] = buf
                        g = buf
                    p.add_(g, alpha=-lr)
                else:
                    b1, b2 = group["betas"]
                    st["step"] = st.get("step", 0) + 1
                    m = st.setdefault("exp_avg", torch.zeros_like(p))
                    v = st.setdefault("exp_avg_sq", torch.zeros_like(p))
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    t = st["step"]
                    denom = (v / (1 - b2 ** t)).sqrt_().add_(1e-8)
                    p.addcdiv_(m, denom, value=-lr / (1 - b1 ** t))
