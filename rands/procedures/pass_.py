"""PASS: parallel adaptive survivor selection (Pei, Nelson & Hunter 2024).

Every system is compared with an adaptive *standard* (the average of the
surviving systems' sample means), never pairwise, so the work per update is
O(k) and the error guarantee does not degrade with k ("curse of multiplicity").

Rule. n0 samples of every system give first-stage variances s_i^2. Then
batches of ``batch`` samples are simulated; after each batch system i is
eliminated when

    t_i (Xbar_i - mu*) <= -g_c(t_i),   t_i = n_i / s_i^2,
    g_c(t) = sqrt((c + log(t + 1)) (t + 1)),

with mu* the current standard. The run stops when one survivor remains or
every survivor has ``max_samples`` samples. Output: the survivor set
(``extras["survivors"]``); ``best`` is the survivor with the largest mean.

Guarantee (EFER). ``t_i (Xbar_i - mu_i)`` is approximately a standard Brownian
motion W in the time scale t_i. g_c is Robbins' normal-mixture boundary: the
mixture martingale (t+1)^(-1/2) exp(W(t)^2 / (2(t+1))) starts at 1, so by
Ville's equality (continuous paths, the martingale tends to 0)

    P(exists t >= 0: |W(t)| >= g_c(t)) = exp(-c/2)   exactly,

hence the one-sided crossing probability p(c) of a system whose mean is at
least the standard obeys exp(-c/2)/2 <= p(c) <= exp(-c/2) (Monte Carlo:
p(8.6) = 0.0074 +- 0.0006, essentially exp(-c/2)/2 since paths rarely cross
both sides). With ``c = -2 log(alpha)`` every such system is falsely
eliminated with probability <= alpha, so the expected false elimination rate
(the expected fraction of systems at least as good as the standard that are
eliminated) is <= alpha. Caveats stated by design: variances are estimated
from n0 samples and the standard is itself estimated and moves; discrete
(batched) monitoring only lowers the crossing probability. PyPRS's default
c = 8.6 corresponds to alpha = exp(-4.3) = 0.0136 by this bound. (The
formula 1 - Phi(sqrt c) + sqrt(c) phi(sqrt c) quoted in some notes exceeds the
exact two-sided probability exp(-c/2), so it cannot be this crossing
probability; we do not use it.)

Parallel execution. On an executor with an asynchronous interface (the
processes and MPI backends of ``rands.parallel``) PASS is the asynchronous
master-worker design of the paper: jobs of ``batch`` samples of a few systems
are dispatched as workers free up and each result updates the standard and
the eliminations at once, with no barrier. **Its result may then depend on
timing** (which batches have returned when a test is made); it is the only
asynchronous procedure in rands. On the serial executor (or with
``asynchronous=False``) batches are synchronous rounds and the result is
deterministic. Every sample is still (seed, i, r)-keyed. No CRN.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import ParameterError, check_alpha, check_float, check_int
from ..params import ALPHA, POSITIVE, Boolean, ints, optional
from .base import Procedure, ProcedureOutput


def boundary(t: np.ndarray, c: float) -> np.ndarray:
    """Robbins' mixture boundary g_c(t) = sqrt((c + log(t+1)) (t+1))."""
    t1 = np.asarray(t, dtype=np.float64) + 1.0
    return np.sqrt((c + np.log(t1)) * t1)


def c_from_alpha(alpha: float) -> float:
    """c such that the two-sided crossing probability exp(-c/2) equals alpha."""
    return -2.0 * math.log(alpha)


def crossing_bounds(c: float) -> tuple[float, float]:
    """(lower, upper) bounds on the one-sided Brownian crossing probability of -g_c."""
    e = math.exp(-c / 2.0)
    return e / 2.0, e


class PASS(Procedure):
    """Parallel adaptive survivor selection with an EFER guarantee (see module docstring).

    Parameters
    ----------
    alpha : EFER target in (0, 1); sets c = -2 log(alpha) unless ``c`` is given.
    c : boundary constant (> 0) overriding alpha (PyPRS uses 8.6).
    n0 : first-stage samples per system (>= 2) for the variances.
    batch : samples per system per batch (Delta, >= 1).
    max_samples : termination sample size per system (>= n0).
    asynchronous : use the executor's asynchronous interface when it has one.
    """

    name = "pass"
    kind = "fixed_precision"
    guarantee = ("EFER <= alpha: a system whose mean is at least the standard is eliminated with "
                 "probability <= exp(-c/2) (Brownian approximation; estimated variances and standard)")
    assumptions = "approximately normal outputs; independent systems (no CRN)"
    supports_crn = False
    reference = ("L. Pei, B. L. Nelson, S. R. Hunter (2024), Parallel adaptive survivor selection, "
                 "Operations Research 72(1):336-354")
    _parameter_constraints = {"alpha": ALPHA, "c": optional(POSITIVE), "n0": ints(2), "batch": ints(1),
                              "max_samples": ints(2), "asynchronous": [Boolean()]}

    def __init__(self, alpha: float = 0.05, c: float | None = None, n0: int = 10, batch: int = 100,
                 max_samples: int = 2000, asynchronous: bool = True):
        self.alpha = alpha
        self.c = c
        self.n0 = n0
        self.batch = batch
        self.max_samples = max_samples
        self.asynchronous = asynchronous
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_alpha(self.alpha)
        if self.c is not None:
            check_float("c", self.c, low=0.0, low_open=True)
        check_int("n0", self.n0, low=2)
        check_int("batch", self.batch, low=1)
        check_int("max_samples", self.max_samples, low=int(self.n0))
        if not isinstance(self.asynchronous, bool):
            raise ParameterError(f"asynchronous must be True or False, got {self.asynchronous!r}")
        super()._validate_params()

    @property
    def c_value(self) -> float:
        return float(self.c) if self.c is not None else c_from_alpha(self.alpha)

    # ------------------------------------------------------------------ run
    def run(self, ctx) -> ProcedureOutput:
        c = self.c_value
        k = ctx.k
        state = ctx.restored
        if state is None:
            ctx.draw(np.arange(k), int(self.n0))
            var = ctx.variances()
            var = np.where(var > 0, var, np.finfo(float).tiny)
            alive = np.ones(k, dtype=bool)
            state = {"alive": alive, "var": var, "rounds": 0}
            ctx.log("first stage", n0=int(self.n0), c=c)
            ctx.boundary(state)
        state = {"alive": np.array(state["alive"], dtype=bool), "var": np.asarray(state["var"], float),
                 "rounds": int(state["rounds"])}
        self._report(ctx, state["alive"], state["var"], c)
        if self.asynchronous and ctx.supports_async and ctx.systems is None:
            self._run_async(ctx, state, c)
        else:
            self._run_sync(ctx, state, c)
        alive = state["alive"]
        survivors = np.flatnonzero(alive)
        means = ctx.means()
        best = int(survivors[np.argmax(means[survivors])])
        return ProcedureOutput(best=best, extras={"survivors": survivors.tolist(), "c": c,
                                                  "efer_bound": crossing_bounds(c)[1],
                                                  "rounds": state["rounds"],
                                                  "mean_of_survivors": float(means[survivors].mean())})

    def _eliminate(self, ctx, alive: np.ndarray, var: np.ndarray, c: float) -> int:
        """Apply the elimination test to every survivor; returns the number eliminated."""
        idx = np.flatnonzero(alive)
        if idx.size <= 1:
            return 0
        n = ctx.n[idx].astype(np.float64)
        means = ctx.sums[idx] / n
        standard = means.mean()
        t = n / var[idx]
        out = t * (means - standard) <= -boundary(t, c)
        if out.all():          # never eliminate everyone: keep the best mean
            out[np.argmax(means)] = False
        alive[idx[out]] = False
        return int(out.sum())

    def _report(self, ctx, alive: np.ndarray, var: np.ndarray, c: float) -> None:
        """Progress with contention and a running estimate of the samples still to come:
        survivor i at gap g below the standard leaves near t g = g_c(t), t = n / var_i (a few
        fixed-point steps), at most max_samples; the others stay until the last of those leaves."""
        if ctx.progress is None:
            return
        idx = np.flatnonzero(alive)
        n = ctx.n[idx].astype(np.float64)
        means = ctx.sums[idx] / np.maximum(n, 1.0)
        gap = means.mean() - means
        below = gap > 0
        t = n / var[idx]
        for _ in range(8):
            t = np.where(below, np.maximum(t, boundary(t, c) / np.where(below, gap, 1.0)), t)
        stop = np.clip(t * var[idx], n, float(self.max_samples))
        if idx.size > 1:
            top = stop[below].max() if below.any() else float(self.max_samples)
            stop[~below] = np.maximum(n[~below], top)
        else:
            stop = n
        ctx.report_progress(contention=int(idx.size), remaining=int(round(float((stop - n).sum()))))

    def _run_sync(self, ctx, state: dict, c: float) -> None:
        alive, var = state["alive"], state["var"]
        cap = int(self.max_samples)
        while True:
            idx = np.flatnonzero(alive & (ctx.n < cap))
            if alive.sum() <= 1 or idx.size == 0:
                break
            counts = np.minimum(int(self.batch), cap - ctx.n[idx])
            ctx.draw_counts(idx, counts)
            gone = self._eliminate(ctx, alive, var, c)
            state["rounds"] += 1
            ctx.log("batch", survivors=int(alive.sum()), eliminated=gone)
            self._report(ctx, alive, var, c)
            ctx.boundary(state)

    def _run_async(self, ctx, state: dict, c: float) -> None:
        """Master loop: keep every worker busy with jobs of batch samples; no barrier.

        Samples go out through ``ctx.submit`` (which reserves replications and
        enforces the budget) and come back through ``ctx.collect`` (which counts
        them and reports progress); the test runs after every returned job.
        """
        alive, var = state["alive"], state["var"]
        cap = int(self.max_samples)
        batch = int(self.batch)

        def per_job() -> int:
            """Systems per job: ~20 ms of work at the measured cost per sample."""
            cost = ctx.cost_per_sample()
            return 1 if not cost == cost or cost <= 0 else max(1, int(0.02 / (cost * batch)))
        in_flight = np.zeros(ctx.k, dtype=bool)
        ctx.begin_async()
        tag = 0
        cursor = 0
        returned_since_boundary = 0
        t_last = time.perf_counter()

        def eligible() -> np.ndarray:
            return np.flatnonzero(alive & ~in_flight & (ctx.n < cap) & (ctx.next_rep < cap))

        round_drain = False
        while True:
            finishing = alive.sum() <= 1
            if not finishing and not round_drain:
                cand = eligible()
                while cand.size and ctx.async_capacity() > 0:
                    # round-robin over the eligible systems from the cursor
                    start = np.searchsorted(cand, cursor)
                    take = np.roll(cand, -start)[:per_job()]
                    cursor = int(take[-1]) + 1
                    ctx.submit(tag, take, np.minimum(batch, cap - ctx.next_rep[take]))
                    in_flight[take] = True
                    tag += 1
                    cand = eligible()
            if ctx.in_flight == 0:
                if finishing or eligible().size == 0:
                    break
                if round_drain:   # nothing in flight: a consistent state for trace and checkpoint
                    state["rounds"] += 1
                    ctx.log("async round", survivors=int(alive.sum()),
                            seconds=round(time.perf_counter() - t_last, 6))
                    self._report(ctx, alive, var, c)
                    ctx.boundary(state)
                    returned_since_boundary = 0
                    t_last = time.perf_counter()
                    round_drain = False
                continue
            for _tag, systems, values in ctx.collect():
                in_flight[np.unique(systems)] = False
                returned_since_boundary += values.size
                self._eliminate(ctx, alive, var, c)
            if returned_since_boundary >= max(1, int(alive.sum())) * batch:
                round_drain = True   # stop submitting until in-flight jobs are back (about once per round)
        state["rounds"] += 1
        ctx.log("async end", survivors=int(alive.sum()))
