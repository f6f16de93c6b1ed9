"""Shared building blocks of the fixed-precision procedures.

* :func:`rinott_stage` - Rinott's two-stage rule on a set of systems.
* :func:`kn_stage` - Kim & Nelson's fully sequential rule on a set of systems
  (CRN allowed): one match of the bulk engine in :mod:`.kn_engine`.

Both keep their state in a flat dict (keys under a prefix) so a procedure can
nest them and checkpoint at block boundaries; both keep their own sums,
so the samples a system received earlier in a run (e.g. earlier KT rounds)
never enter their decisions.
"""
from __future__ import annotations

from typing import Callable

import numba
import numpy as np

from ...errors import ParameterError, check_alpha, check_delta, check_int
from .constants import rinott_h
from .kn_engine import kn_matches


# --------------------------------------------------------------------------- validation
def check_common(alpha, delta, n0) -> None:
    check_alpha(alpha)
    check_delta(delta)
    if isinstance(n0, bool) or not isinstance(n0, (int, np.integer)):
        raise ParameterError(f"n0 (first-stage samples per system) must be an integer >= 2, got {n0!r}")
    check_int("n0", n0, low=2)


def _as_int(v) -> int:
    return int(np.asarray(v).item())


# --------------------------------------------------------------------------- Rinott
STAGE_PIECE_S = 3.0   # seconds of Rinott stage-2 sampling between two boundaries (stop requests)


def rinott_stage(ctx, systems: np.ndarray, *, alpha: float, delta: float, n0: int, k_const: int | None,
                 st: dict, save: Callable[[], None], prefix: str = "") -> int:
    """Rinott (1978) on ``systems`` (local ids of ctx); returns the position of the winner.

    Stage 1: n0 samples each; N_i = max(n0, ceil((h S_i / delta)^2)) with
    h = h(k_const, 1-alpha, n0-1) (k_const defaults to len(systems)); stage 2:
    N_i - n0 more; select the largest mean of these N_i samples.
    """
    systems = np.asarray(systems, dtype=np.int64)
    m = systems.shape[0]
    if m == 1:
        return 0
    p = prefix
    h = rinott_h(int(k_const or m), 1.0 - alpha, n0 - 1)
    if _as_int(st.get(p + "stage", 0)) < 1:
        x = ctx.draw(systems, n0)
        st[p + "sums"] = x.sum(axis=1)
        s2 = x.var(axis=1, ddof=1)
        st[p + "N"] = np.maximum(n0, np.ceil(h * h * s2 / (delta * delta))).astype(np.int64)
        st[p + "stage"] = 1
        ctx.log(p + "rinott_stage1", systems=m, h=h, n0=n0)
        save()
    if _as_int(st[p + "stage"]) < 2:
        n_tot = np.asarray(st[p + "N"], dtype=np.int64)
        # stage 2 in pieces of about STAGE_PIECE_S seconds (whole systems), a boundary after each,
        # so a stop request waits for one piece; each system's samples and sums are unchanged
        done = np.asarray(st.get(p + "done", np.zeros(m, dtype=bool)), dtype=bool)
        need = np.where(done, 0, n_tot - n0)
        ctx.report_progress(remaining=int(need.sum()))    # known once stage 1 is in
        cost = ctx.cost_per_sample()
        piece = max(1, int(STAGE_PIECE_S / cost)) if cost == cost and cost > 0 else int(need.sum()) + 1
        todo = np.flatnonzero(~done)
        cuts = np.searchsorted(np.cumsum(need[todo]), np.arange(piece, int(need.sum()), piece))
        for part in np.split(todo, np.unique(cuts)):
            if part.size == 0:
                continue
            before = ctx.sums[systems[part]].copy()
            ctx.draw_counts(systems[part], need[part])
            sums = np.asarray(st[p + "sums"], dtype=np.float64).copy()
            sums[part] += ctx.sums[systems[part]] - before
            done[part] = True
            st[p + "sums"], st[p + "done"] = sums, done.copy()
            if not done.all():
                save()
        st.pop(p + "done", None)
        st[p + "stage"] = 2
        ctx.log(p + "rinott_stage2", max_N=int(n_tot.max()), mean_N=float(n_tot.mean()))
        save()
    means = np.asarray(st[p + "sums"], dtype=np.float64) / np.asarray(st[p + "N"], dtype=np.float64)
    return int(np.argmax(means))


# --------------------------------------------------------------------------- KN
def kn_stage(ctx, systems: np.ndarray, *, alpha: float, delta: float, n0: int, crn: bool,
             st: dict, save: Callable[[], None], prefix: str = "", lookahead: int | None = None,
             c: int = 1) -> int:
    """Kim & Nelson (2001) on ``systems`` (local ids of ctx); returns the winner's position.

    One match of :func:`kn_engine.kn_matches`: n0 samples each; S_il^2 = sample
    variance of X_i - X_l over them (from the centred first-stage matrix, never
    a k x k matrix); then one sample per survivor per stage (drawn ``lookahead``
    stages at a time) with KN's screening until one survives. Under CRN all
    draws use common replication indices start, start+1, ... (start = the
    largest next replication among ``systems``). PCS >= 1-alpha under the IZ,
    normal data. ``c``: KN's boundary parameter (default 1).
    """
    systems = np.asarray(systems, dtype=np.int64)
    if systems.shape[0] == 1:
        return 0
    return int(kn_matches(ctx, [systems], alpha=alpha, delta=delta, n0=n0, crn=crn,
                          lookahead=lookahead, st=st, prefix=prefix, save=save, c=c)[0])
