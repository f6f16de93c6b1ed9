"""GSP: the Good Selection Procedure of Ni, Ciocan, Henderson & Hunter (2017)."""
from __future__ import annotations

import time

import numba
import numpy as np

from ...errors import ParameterError, check_alpha, check_delta, check_float, check_int
from ...params import ALPHA, CRN, DELTA, POSITIVE, ints
from ..base import Procedure, ProcedureOutput
from ._core import _as_int
from .constants import gsp_eta, rinott_h


@numba.njit(cache=True)
def _gsp_screen(alive_idx, mean, s2, n, n_max, eta, nu, keep):
    """keep[j] = False if some surviving l has Y_il < -a_il, where
    t_il = (S_i^2/n_i + S_l^2/n_l)^-1, Y_il = t_il (mean_i - mean_l),
    a_il = eta sqrt(nu t_il(rbar)) with t_il(rbar) from the planned maximal sizes n_max.
    Candidates l are scanned in decreasing order of their means (early exit)."""
    m = alive_idx.shape[0]
    neg = np.empty(m)
    for j in range(m):
        neg[j] = -mean[alive_idx[j]]
    order = np.argsort(neg)
    for jj in range(m):
        jpos = order[jj]
        i = alive_idx[jpos]
        out = False
        for ll in range(m):
            l = alive_idx[order[ll]]
            d = mean[i] - mean[l]
            if d >= 0.0:
                break
            t = 1.0 / (s2[i] / n[i] + s2[l] / n[l])
            tmax = 1.0 / (s2[i] / n_max[i] + s2[l] / n_max[l])
            if t * d < -eta * np.sqrt(nu * tmax):
                out = True
                break
        keep[jpos] = not out
    return keep


class GSP(Procedure):
    """Good Selection Procedure: screening rounds, then a Rinott stage.

    Stage 0 (optional, n0 > 0): n0 samples each, timed, to set batch sizes
    (then the batches depend on measured times, so results repeat exactly only
    with n0 = 0, which gives every system the same time).
    Stage 1: n1 samples each -> means, S_i^2; batch b_i = ceil(beta (S_i/sqrt(T_i)) /
    mean_j(S_j/sqrt(T_j))). Screening after stage 1 and after each of ``rbar``
    stage-2 rounds (b_i more samples each): with n_i(r) = n1 + r b_i,
    t_ij = (S_i^2/n_i + S_j^2/n_j)^-1, eliminate i if t_ij (mean_i - mean_j) <
    -eta sqrt((n1-1) t_ij(rbar)), eta = :func:`~.constants.gsp_eta`(k, alpha1, n1).
    Stage 3: Rinott on survivors, N_i = max(n_i, ceil((h S_i/delta)^2)),
    h = h(k, 1-alpha2, n1-1); select the largest mean.
    Guarantee: PGS >= 1 - alpha1 - alpha2 (selected mean within delta of the
    best); normal outputs, independent systems (CRN refused).

    Ni, E. C., Ciocan, D. F., Henderson, S. G. & Hunter, S. R. (2017). Efficient
    ranking and selection in parallel computing environments. Oper. Res. 65(3), 821-836.
    """

    name = "gsp"
    kind = "fixed_precision"
    guarantee = "PGS >= 1-alpha1-alpha2 (good selection within delta)"
    assumptions = "normal outputs; independent systems (no CRN); unknown unequal variances"
    supports_crn = False
    reference = "Ni, Ciocan, Henderson & Hunter (2017), Oper. Res. 65(3):821-836"
    _parameter_constraints = {"alpha1": ALPHA, "alpha2": ALPHA, "delta": DELTA, "n1": ints(2),
                              "rbar": ints(0, 10**6), "beta": POSITIVE, "n0": ints(0), "crn": CRN}

    def __init__(self, alpha1: float = 0.025, alpha2: float = 0.025, delta: float = 0.1, n1: int = 50,
                 rbar: int = 10, beta: float = 100.0, n0: int = 0, crn: bool = False):
        self.alpha1 = alpha1
        self.alpha2 = alpha2
        self.delta = delta
        self.n1 = n1
        self.rbar = rbar
        self.beta = beta
        self.n0 = n0
        self.crn = crn
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        a1 = check_alpha(self.alpha1, "alpha1")
        a2 = check_alpha(self.alpha2, "alpha2")
        if a1 + a2 >= 1.0:
            raise ParameterError(f"alpha1 + alpha2 must be < 1, got {a1} + {a2}")
        check_delta(self.delta)
        for nm, low in (("n1", 2), ("rbar", 0), ("n0", 0)):
            v = getattr(self, nm)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ParameterError(f"{nm} must be an integer >= {low}, got {v!r}")
            check_int(nm, v, low=low)
        check_float("beta", self.beta, low=0.0, low_open=True)
        super()._validate_params()

    def run(self, ctx) -> ProcedureOutput:
        k = ctx.k
        n1, rbar, n0 = int(self.n1), int(self.rbar), int(self.n0)
        delta = float(self.delta)
        everyone = np.arange(k)
        eta = gsp_eta(k, float(self.alpha1), n1)
        h = rinott_h(k, 1.0 - float(self.alpha2), n1 - 1)
        nu = float(n1 - 1)
        st = dict(ctx.restored) if ctx.restored is not None else {}
        save = lambda: ctx.boundary(st)  # noqa: E731
        if _as_int(st.get("stage", -1)) < 0:
            times = np.ones(k)
            if n0 > 0:
                for i in range(k):
                    t0 = time.perf_counter()
                    ctx.draw(np.array([i]), n0)
                    times[i] = max((time.perf_counter() - t0) / n0, 1e-12)
                ctx.log("gsp_stage0", n0=n0)
            st["times"] = times
            st["stage"] = 0
            save()
        if _as_int(st["stage"]) < 1:
            before_s, before_q = ctx.sums.copy(), ctx.sumsq.copy()
            ctx.draw(everyone, n1)
            sums = ctx.sums - before_s
            s2 = np.maximum((ctx.sumsq - before_q - sums * sums / n1) / (n1 - 1), 1e-300)
            w = np.sqrt(s2 / np.asarray(st["times"], dtype=np.float64))
            b = np.ceil(float(self.beta) * w / w.mean()).astype(np.int64)
            b = np.maximum(b, 1)
            st.update(stage=1, round=0, sums=sums, s2=s2, b=b, n=np.full(k, n1, dtype=np.int64),
                      alive=np.ones(k, dtype=bool))
            self._screen(st, eta, nu, n1, rbar)
            ctx.log("gsp_stage1", n1=n1, eta=eta, survivors=int(np.asarray(st["alive"]).sum()))
            save()
        sums = np.array(st["sums"], dtype=np.float64)
        n = np.array(st["n"], dtype=np.int64)
        alive = np.array(st["alive"], dtype=bool)
        b = np.asarray(st["b"], dtype=np.int64)
        s2 = np.asarray(st["s2"], dtype=np.float64)
        st.update(sums=sums, n=n, alive=alive)
        target = np.ceil(h * h * s2 / (delta * delta))

        def report(rnd: int) -> None:
            """Contention and an upper bound on the samples to come: every survivor runs the
            remaining rounds, then tops up to its stage-3 size (eliminations only lower it)."""
            idx = np.flatnonzero(alive)
            rest = 0 if idx.size <= 1 else int((np.maximum(n[idx] + b[idx] * (rbar - rnd),
                                                           target[idx]) - n[idx]).sum())
            ctx.report_progress(contention=int(idx.size), remaining=rest)

        if _as_int(st["stage"]) < 2:
            rnd = _as_int(st["round"])
            report(rnd)
            while rnd < rbar and alive.sum() > 1:
                rnd += 1
                idx = np.flatnonzero(alive)
                before = ctx.sums[idx].copy()
                ctx.draw_counts(idx, b[idx])
                sums[idx] += ctx.sums[idx] - before
                n[idx] += b[idx]
                st["round"] = rnd
                self._screen(st, eta, nu, n1, rbar)
                ctx.log("gsp_round", round=rnd, survivors=int(alive.sum()))
                report(rnd)
                save()
            st["stage"] = 2
            save()
        if _as_int(st["stage"]) < 3:
            idx = np.flatnonzero(alive)
            if idx.shape[0] > 1:
                target = np.maximum(n[idx], np.ceil(h * h * s2[idx] / (delta * delta)).astype(np.int64))
                before = ctx.sums[idx].copy()
                ctx.draw_counts(idx, target - n[idx])
                sums[idx] += ctx.sums[idx] - before
                n[idx] = target
            st["stage"] = 3
            ctx.log("gsp_stage3", h=h, survivors=int(idx.shape[0]))
            save()
        idx = np.flatnonzero(alive)
        best = int(idx[np.argmax(sums[idx] / n[idx])])
        return ProcedureOutput(best=best, extras={"eta": eta, "h": h, "batch_mean": float(b.mean()),
                                                  "stage3_survivors": int(idx.shape[0])})

    @staticmethod
    def _screen(st: dict, eta: float, nu: float, n1: int, rbar: int) -> None:
        alive = st["alive"]
        idx = np.flatnonzero(alive)
        if idx.shape[0] <= 1:
            return
        n = st["n"].astype(np.float64)
        n_max = (n1 + rbar * st["b"]).astype(np.float64)
        keep = _gsp_screen(idx, st["sums"] / n, st["s2"], n, n_max, eta, nu,
                           np.ones(idx.shape[0], dtype=np.bool_))
        alive[idx[~keep]] = False
