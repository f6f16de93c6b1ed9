"""One gradient-estimator core for reward fine-tuning of diffusion samplers.

An :class:`Estimator` is a strategy :class:`~.plans.Plan` plus the options of
its likelihood-ratio terms. :meth:`Estimator.surrogate` samples (or reuses) a
trajectory driven by injected noise and returns a scalar S(theta) whose
gradient is the estimate of grad_theta E[R(x_0)] (ascent direction):

    S = (1/B) sum_b [ sum_{FO(K)} R(x0_b(theta))                       pathwise, steps K..1
                    + sum_{HO(j,h)} A_b log N(x_{j-1,b}; m_j(theta), sigma_j^2)   sub-chain j+h-1..j
                    + sum_{ZO(S)} A_b <delta_b, theta> / sigma_p ]      parameter perturbation

with A_b = R_b - baseline_b (leave-one-out mean by default: unbiased because it
does not depend on chain b). PPO-clip replaces A log p by
min(r A, clip(r, 1-c, 1+c) A), r = exp(log p - log p_old) (DDPO, Black et al. 2024).

Named configurations (:func:`make_estimator`): full backprop, DRaFT-K and
AlignProp (random) truncation, DDPO REINFORCE and PPO-clip, RLR (eq. 6 of
arXiv 2502.00639, LR or literal parameter-ZO fill, uniform/softmax/band j),
the released RLR code's structure, and the unbiased hybrid BP-K + LR.

Cost ledger (per chain): ``forward`` = network calls without graph (sampling),
``graph`` = step evaluations recomputed with a graph (each also needs a
backward, counted as 2 forwards), ``peak_depth`` = most steps held in one graph
(activation memory). ``units = forward + 3 * graph``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from rands.errors import ParameterError, check_float, check_int

from .plans import (FO, HO, ZO, Coverage, FixedPlan, Plan, RandomStepsPlan, RandomTruncationPlan, RLRPlan,
                    check_coverage, LR)
from .schedule import DDIMSchedule, NoiseBank, gaussian_logprob

__all__ = ["Trajectory", "sample_chain", "Estimator", "make_estimator", "ESTIMATORS", "estimate_gradient",
           "flat_grad", "profile_step_memory", "chunk_from_budget", "replicated_gradients", "update_step_norms"]


@dataclass
class Trajectory:
    """States of a batch of chains: ``xs[t]`` = x_t (``xs[0]`` = x_0), plus ZO perturbations."""
    xs: list
    zo_delta: dict = field(default_factory=dict)  # step -> {param name: (B, *shape)}
    zo_sigma: float = 0.0
    logp_old: dict = field(default_factory=dict)  # HO term -> (B,) log-prob at sampling time

    @property
    def x0(self) -> torch.Tensor:
        return self.xs[0]


def _params(model: torch.nn.Module) -> dict:
    return {k: v for k, v in model.named_parameters() if v.requires_grad}


def _perturbed_eps(model, x, tt, delta: dict, sigma: float) -> torch.Tensor:
    """Denoiser output with per-sample parameters theta + sigma * delta_b (torch.func.vmap)."""
    from torch.func import functional_call, vmap
    base = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v for k, v in model.named_buffers()}
    pert = {k: base[k].unsqueeze(0) + sigma * delta[k] if k in delta else base[k].unsqueeze(0).expand(
        x.shape[0], *base[k].shape) for k in base}

    def one(p, xb, tb):
        return functional_call(model, ({**p, **buffers}), (xb.unsqueeze(0), tb.unsqueeze(0)))[0]

    try:
        return vmap(one)(pert, x, tt)
    except Exception:  # noqa: BLE001 - models vmap cannot trace: one call per sample
        return torch.stack([one({k: v[b] for k, v in pert.items()}, x[b], tt[b]) for b in range(x.shape[0])])


@torch.no_grad()
def sample_chain(model, schedule: DDIMSchedule, noise: NoiseBank, *, zo_steps: Sequence[int] = (),
                 zo_sigma: float = 0.0, generator: torch.Generator | None = None) -> Trajectory:
    """Run the sampler from ``noise.x_T`` with the injected step noises (no graph).

    Steps in ``zo_steps`` run with per-chain parameter perturbations theta + zo_sigma * delta.
    """
    T = schedule.num_steps
    if noise.eps.shape[0] != T:
        raise ParameterError(f"noise bank has {noise.eps.shape[0]} steps, schedule has {T}")
    x = noise.x_T
    xs = [None] * (T + 1)
    xs[T] = x
    zo = set(int(s) for s in zo_steps)
    deltas: dict = {}
    if zo and zo_sigma <= 0:
        raise ParameterError("zo_sigma must be > 0 when some steps use parameter ZO")
    params = _params(model) if zo else {}
    for t in range(T, 0, -1):
        tt = schedule.timestep_tensor(t, x.shape[0], x.device)
        if t in zo:
            d = {k: torch.randn((x.shape[0], *v.shape), generator=generator, dtype=v.dtype)
                 for k, v in params.items()}
            deltas[t] = d
            eps = _perturbed_eps(model, x, tt, d, zo_sigma)
        else:
            eps = model(x, tt)
        x = schedule.mean_from_eps(eps, x, t) + float(schedule.sigma[t - 1]) * noise.eps[t - 1]
        xs[t - 1] = x
    return Trajectory(xs, deltas, float(zo_sigma))


def _advantage(R: torch.Tensor, baseline) -> torch.Tensor:
    B = R.shape[0]
    if baseline == "loo":
        if B < 2:
            return R
        return R - (R.sum() - R) / (B - 1)
    if baseline == "none" or baseline is None:
        return R
    if baseline == "normalize":  # DDPO: (R - mean) / std, biased in scale
        return (R - R.mean()) / (R.std() + 1e-8)
    if isinstance(baseline, (int, float)):
        return R - float(baseline)
    raise ParameterError(f"baseline must be 'loo', 'none', 'normalize' or a number, got {baseline!r}")


class Estimator:
    """A gradient estimator: strategy plan + likelihood-ratio options.

    Parameters
    ----------
    plan : Plan (or a list of terms, fixed).
    baseline : "loo" (leave-one-out batch mean; unbiased), "none", "normalize" (DDPO; biased in
        scale) or a constant.
    reduce : "sum" (the density's log-prob; unbiased) or "mean" (DDPO code: gradient / dimension).
    ppo_clip : None (REINFORCE) or the PPO clip range c.
    zo_sigma : parameter perturbation scale for ZO terms.
    """

    def __init__(self, plan, *, name: str = "custom", baseline="loo", reduce: str = "sum",
                 ppo_clip: float | None = None, zo_sigma: float = 0.01):
        self.plan = plan if isinstance(plan, Plan) else FixedPlan(lambda T, _t=list(plan): _t)
        self.name = name
        _advantage(torch.zeros(2), baseline)
        self.baseline = baseline
        if reduce not in ("sum", "mean"):
            raise ParameterError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
        self.reduce = reduce
        self.ppo_clip = None if ppo_clip is None else check_float("ppo_clip", ppo_clip, low=0, low_open=True)
        self.zo_sigma = check_float("zo_sigma", zo_sigma, low=0, low_open=True)

    def coverage(self, schedule: DDIMSchedule) -> Coverage:
        return check_coverage(self.plan, schedule.num_steps, schedule.sigma)

    def __repr__(self) -> str:
        return f"Estimator({self.name!r})"

    # -- the surrogate, one piece at a time -------------------------------------------------
    def _prepare(self, model, schedule: DDIMSchedule, noise: NoiseBank, reward, *, rng, terms, traj, generator, R):
        T = schedule.num_steps
        if terms is None:
            terms = self.plan.sample(rng, T)
        zo_steps = sorted({s for term in terms if isinstance(term, ZO) for s in term.steps_})
        cost = {"forward": 0, "graph": 0, "peak_depth": 0, "reward_calls": 0, "reward_grads": 0}
        if traj is None or (zo_steps and set(traj.zo_delta) != set(zo_steps)):
            traj = sample_chain(model, schedule, noise, zo_steps=zo_steps, zo_sigma=self.zo_sigma,
                                generator=generator)
        cost["forward"] += T
        if R is None:
            with torch.no_grad():
                R = reward(traj.x0).detach()
        cost["reward_calls"] += 1
        for term in terms:
            if isinstance(term, FO) and not getattr(reward, "differentiable", False):
                raise ParameterError(f"estimator {self.name!r} backprops through the reward, but the reward "
                                     "is not differentiable; use an estimator without FO terms")
        return terms, traj, R, _advantage(R, self.baseline), cost

    def _pieces(self, model, schedule: DDIMSchedule, noise: NoiseBank, reward, terms, traj: Trajectory, A, cost,
                chunk, separate=()):
        """Yield (key, surrogate piece, graph depth in steps, per-term pieces); each piece's graph is built
        only when it is yielded, so a caller that backpropagates it before asking for the next holds the
        graph of one piece at a time. Likelihood-ratio terms (h = 1) are batched ``chunk`` steps per
        network call (None: all in one call)."""
        B = noise.batch
        lr_terms = [term for term in terms if isinstance(term, HO) and term.h == 1 and term not in separate]
        for term in terms:
            if isinstance(term, FO):
                x = traj.xs[term.K].detach()
                for t in range(term.K, 0, -1):
                    x = schedule.step(model, x, t, noise.eps[t - 1])
                s = reward(x).sum() / B
                cost["graph"] += term.K
                cost["reward_calls"] += 1
                cost["reward_grads"] += 1
                yield term, s, term.K, {term: s}
            elif isinstance(term, HO) and (term.h > 1 or term in separate):
                x = traj.xs[term.j + term.h - 1].detach()
                for t in range(term.j + term.h - 1, term.j, -1):
                    x = schedule.step(model, x, t, noise.eps[t - 1])
                m = schedule.mean(model, x, term.j)
                lp = gaussian_logprob(traj.xs[term.j - 1].detach(), m, float(schedule.sigma[term.j - 1]),
                                      self.reduce)
                s = self._lr_objective(lp, A, traj, term) / B
                cost["graph"] += term.h
                yield term, s, term.h, {term: s}
            elif isinstance(term, ZO):
                s = self._zo_surrogate(model, traj, A, term.steps_) / B
                yield term, s, 0, {term: s}
        c = len(lr_terms) if chunk is None else int(chunk)
        for i in range(0, len(lr_terms), max(c, 1)):
            group = lr_terms[i:i + max(c, 1)]
            per: dict = {}
            s = self._lr_batch(model, schedule, traj, A, group, per) / B
            cost["graph"] += len(group)
            yield tuple(group), s, len(group), {k: v / B for k, v in per.items()}

    def surrogate(self, model, schedule: DDIMSchedule, noise: NoiseBank, reward, *,
                  rng: np.random.Generator, terms: list | None = None, traj: Trajectory | None = None,
                  generator: torch.Generator | None = None, R: torch.Tensor | None = None,
                  track_terms: bool = False):
        """S(theta) (scalar) and an info dict (R, terms, cost, per-term surrogates).

        Every term's graph is alive until S is backpropagated, so ``cost["peak_depth"]`` (steps held at
        once) is the sum over terms; :meth:`gradient` computes the same gradient at the memory of the
        largest single term."""
        terms, traj, R, A, cost = self._prepare(model, schedule, noise, reward, rng=rng, terms=terms, traj=traj,
                                                generator=generator, R=R)
        pieces: dict = {}
        total = torch.zeros((), dtype=noise.x_T.dtype)
        for _key, s, depth, per in self._pieces(model, schedule, noise, reward, terms, traj, A, cost, None):
            total = total + s
            cost["peak_depth"] += depth
            if track_terms:
                pieces.update(per)
        cost["units"] = cost["forward"] + 3 * cost["graph"]
        return total, {"R": R, "terms": terms, "cost": cost, "pieces": pieces, "traj": traj}

    def gradient(self, model, schedule: DDIMSchedule, noise: NoiseBank, reward, *,
                 rng: np.random.Generator | None, terms: list | None = None, traj: Trajectory | None = None,
                 generator: torch.Generator | None = None, R: torch.Tensor | None = None, chunk="auto",
                 accumulate: bool = False):
        """The gradient of :meth:`surrogate` (equal to rounding), backpropagated one term at a time.

        Each term's graph is built, backpropagated and freed before the next is built, so the peak
        autograd memory is that of the largest term: K steps for FO(K), h for HO(j, h), ``chunk`` for a
        batch of ``chunk`` single-step likelihood ratios (``"auto"``: the largest FO/HO term, at least 1,
        so the likelihood-ratio fill never raises the peak; an int sized by a memory budget with
        :func:`chunk_from_budget`). This is RLR's memory claim (arXiv 2502.00639 §3.3): the gradient at
        the memory of h backpropagated steps. With ``accumulate=True`` the ascent direction is added to
        each parameter's ``.grad`` (as ``backward`` would) and the returned flat gradient is None.
        Returns (flat gradient or None, info); ``info["cost"]["peak_depth"]`` = max term depth.
        """
        terms, traj, R, A, cost = self._prepare(model, schedule, noise, reward, rng=rng, terms=terms, traj=traj,
                                                generator=generator, R=R)
        adaptive = isinstance(self.plan, RLRPlan) and self.plan.j_rule == "softmax"
        separate = {HO(self.plan.last_j, self.plan.h)} if adaptive and hasattr(self.plan, "last_j") else set()
        if chunk == "auto":
            chunk = max([t.K for t in terms if isinstance(t, FO)] + [t.h for t in terms if isinstance(t, HO)
                                                                    and t.h > 1] + [1])
        elif chunk is not None:
            chunk = check_int("chunk", chunk, low=1)
        params = list(_params(model).values())
        flat = None if accumulate else torch.zeros(sum(p.numel() for p in params), dtype=noise.x_T.dtype)
        norms: dict = {}
        for key, s, depth, _per in self._pieces(model, schedule, noise, reward, terms, traj, A, cost, chunk,
                                                separate):
            cost["peak_depth"] = max(cost["peak_depth"], depth)
            if not s.requires_grad:
                continue
            gs = torch.autograd.grad(s, params, allow_unused=True)
            if key in separate:
                norms[key] = float(torch.sqrt(sum((g * g).sum() for g in gs if g is not None)))
            if accumulate:
                for p, g in zip(params, gs):
                    if g is not None:
                        p.grad = g.detach().clone() if p.grad is None else p.grad + g
            else:
                flat += torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(gs, params)])
            del gs, s, _per
        if norms:
            self.plan.update(norms)
        cost["units"] = cost["forward"] + 3 * cost["graph"]
        return flat, {"R": R, "terms": terms, "cost": cost, "traj": traj, "term_norms": norms}

    def _lr_objective(self, lp, A, traj: Trajectory, term) -> torch.Tensor:
        if self.ppo_clip is None:
            return (A * lp).sum()
        old = traj.logp_old.get(term)
        if old is None:
            old = lp.detach()
            traj.logp_old[term] = old
        ratio = torch.exp(torch.clamp(lp - old, -20.0, 20.0))
        c = self.ppo_clip
        return torch.minimum(ratio * A, torch.clamp(ratio, 1 - c, 1 + c) * A).sum()

    def _lr_batch(self, model, schedule, traj, A, lr_terms, pieces) -> torch.Tensor:
        """Single-step likelihood-ratio terms with one batched network call."""
        steps = [term.j for term in lr_terms]
        B = traj.x0.shape[0]
        X = torch.cat([traj.xs[t].detach() for t in steps])
        tt = torch.cat([schedule.timestep_tensor(t, B, X.device) for t in steps])
        eps = model(X, tt)
        total = torch.zeros((), dtype=X.dtype)
        for n, term in enumerate(lr_terms):
            t = term.j
            sl = slice(n * B, (n + 1) * B)
            m = schedule.mean_from_eps(eps[sl], X[sl], t)
            lp = gaussian_logprob(traj.xs[t - 1].detach(), m, float(schedule.sigma[t - 1]), self.reduce)
            s = self._lr_objective(lp, A, traj, term)
            if pieces is not None:
                pieces[term] = s
            total = total + s
        return total

    def _zo_surrogate(self, model, traj: Trajectory, A, steps) -> torch.Tensor:
        params = _params(model)
        total = torch.zeros((), dtype=A.dtype)
        for t in steps:
            d = traj.zo_delta[t]
            for k, p in params.items():
                w = torch.tensordot(A, d[k], dims=([0], [0])) / traj.zo_sigma
                total = total + (w * p).sum()
        return total


def flat_grad(model, scalar: torch.Tensor, retain_graph: bool = False) -> torch.Tensor:
    params = list(_params(model).values())
    gs = torch.autograd.grad(scalar, params, retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(gs, params)])


def update_step_norms(model, estimator: Estimator, info: dict) -> None:
    """Feed the norm of the sampled HO term's gradient to a softmax-j RLR plan (paper §3.3)."""
    plan = estimator.plan
    term = HO(plan.last_j, plan.h)
    if term in info["pieces"] and info["pieces"][term].requires_grad:
        plan.update({term: float(flat_grad(model, info["pieces"][term], retain_graph=True).norm())})


def estimate_gradient(model, schedule, noise, reward, estimator: Estimator, *, rng: np.random.Generator,
                      traj: Trajectory | None = None, R=None, generator=None, chunk="auto"):
    """Flat gradient estimate (torch, detached) and the info dict; feeds adaptive j back to the plan.

    Memory-saving form (:meth:`Estimator.gradient`): one term's graph at a time. ``chunk=None`` batches
    every single-step likelihood ratio into one graph (faster on small models, more memory)."""
    g, info = estimator.gradient(model, schedule, noise, reward, rng=rng, traj=traj, R=R, generator=generator,
                                 chunk=chunk)
    return g.detach(), info


def chunk_from_budget(budget_bytes: float, step_bytes_per_chain: float, batch: int) -> int:
    """Likelihood-ratio steps per backward pass that fit ``budget_bytes`` of saved activations
    (``step_bytes_per_chain`` from :func:`profile_step_memory`'s ``mem_ho``). Raises if not even one."""
    b = check_float("budget_bytes", budget_bytes, low=0, low_open=True)
    m = check_float("step_bytes_per_chain", step_bytes_per_chain, low=0, low_open=True)
    n = int(b // (m * check_int("batch", batch, low=1)))
    if n < 1:
        raise ParameterError(f"budget_bytes={b:.4g} holds no step of a batch of {batch} "
                             f"(needs >= {m * batch:.4g})")
    return n


def make_estimator(name: str, T: int | None = None, **kw) -> Estimator:
    """A named configuration. Names (see ESTIMATORS): full_bp, draft_K (K int), alignprop_rand,
    ddpo, ddpo_ppo, rlr (h, j, band, fill, temperature), rlr_code, hybrid_bp_K."""
    if name == "full_bp":
        return Estimator(FixedPlan(lambda T: [FO(T)]), name=name)
    if name.startswith("draft_"):
        K = check_int("K", int(name.split("_")[1]), low=1)
        return Estimator(FixedPlan(lambda T: [FO(min(K, T))]), name=name)
    if name == "alignprop_rand":
        return Estimator(RandomTruncationPlan(kw.pop("k_min", 1), kw.pop("k_max", None)), name=name)
    if name == "ddpo":
        return Estimator(FixedPlan(lambda T: [LR(t) for t in range(1, T + 1)]), name=name,
                         baseline=kw.pop("baseline", "loo"), reduce=kw.pop("reduce", "sum"))
    if name == "ddpo_ppo":
        return Estimator(FixedPlan(lambda T: [LR(t) for t in range(1, T + 1)]), name=name,
                         baseline=kw.pop("baseline", "normalize"), reduce=kw.pop("reduce", "mean"),
                         ppo_clip=kw.pop("ppo_clip", 1e-4))
    if name.startswith("rlr_code"):
        return Estimator(RandomStepsPlan(kw.pop("n", 2), kw.pop("fo", 1)), name=name)
    if name.startswith("rlr"):
        plan = RLRPlan(kw.pop("h", 2), fo=kw.pop("fo", 1), fill=kw.pop("fill", "lr"), j=kw.pop("j", "uniform"),
                       band=kw.pop("band", None), temperature=kw.pop("temperature", None))
        return Estimator(plan, name=name, zo_sigma=kw.pop("zo_sigma", 0.01), baseline=kw.pop("baseline", "loo"))
    if name.startswith("hybrid_bp_"):
        K = check_int("K", int(name.split("_")[2]), low=1)
        return Estimator(FixedPlan(lambda T: [FO(min(K, T))] + [LR(t) for t in range(K + 1, T + 1)]), name=name)
    raise ParameterError(f"unknown estimator {name!r}; valid: {', '.join(ESTIMATORS)}")


ESTIMATORS = ["full_bp", "draft_K", "alignprop_rand", "ddpo", "ddpo_ppo", "rlr", "rlr_code", "hybrid_bp_K"]


def profile_step_memory(model, schedule: DDIMSchedule, shape: Sequence[int], *, t: int | None = None) -> dict:
    """Measured per-chain memory (bytes) of one graph-holding step (B_h) and one ZO step (B_z).

    B_h = bytes of the tensors autograd saves for one sampler step (saved-tensor hooks);
    B_z = bytes of one parameter perturbation (what a ZO step must keep until the update).
    """
    t = schedule.num_steps if t is None else t
    saved = [0]

    def pack(x):
        saved[0] += x.numel() * x.element_size()
        return x

    dtype = next(iter(_params(model).values())).dtype
    x = torch.zeros((1, *shape), dtype=dtype)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        y = schedule.step(model, x, t, torch.zeros_like(x))
    del y
    bz = sum(p.numel() * p.element_size() for p in _params(model).values())
    return {"mem_ho": float(saved[0]), "mem_zo": float(bz)}


def replicated_gradients(model, schedule: DDIMSchedule, reward, estimator: Estimator, x_T: torch.Tensor,
                         eps: torch.Tensor, terms: list) -> tuple[torch.Tensor, dict]:
    """Gradient estimates of G independent replications at once (``torch.func.vmap`` over ``grad``).

    ``x_T`` is (G, B, *shape) and ``eps`` (T, G, B, *shape): replication g is the batch of B chains
    driven by ``x_T[g]``, ``eps[:, g]``, all with the same strategy map ``terms`` (group replications
    by their sampled map). Returns (G, P) flat gradients, identical (to rounding) to calling
    :func:`estimate_gradient` on each replication, and the cost ledger of one replication.
    ZO terms are not supported here (their per-chain parameter perturbations are not vmapped).
    """
    from torch.func import functional_call, grad, vmap
    if any(isinstance(t, ZO) for t in terms):
        raise ParameterError("replicated_gradients does not support ZO terms; use estimate_gradient")
    names = list(_params(model))
    params = {k: v.detach() for k, v in _params(model).items()}
    cost: dict = {}

    def one(p, xT, ep):
        def fmodel(x, t):
            return functional_call(model, p, (x, t))
        S, info = estimator.surrogate(fmodel, schedule, NoiseBank(xT, ep), reward, rng=None, terms=list(terms))
        cost.update(info["cost"])
        return S

    g = vmap(grad(one), in_dims=(None, 0, 1))(params, x_T, eps)
    flat = torch.cat([g[k].reshape(g[k].shape[0], -1) for k in names], dim=1)
    return flat, cost
