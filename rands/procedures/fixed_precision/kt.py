"""KT: the knockout tournament of Zhong & Hong (2022)."""
from __future__ import annotations

import numpy as np

from ...errors import ParameterError, check_int
from ...params import ALPHA, CRN, DELTA, ints, optional
from ..base import Procedure, ProcedureOutput
from ._core import _as_int, check_common, kn_stage, rinott_stage
from .kn_engine import run_kn_matches

ROUND = "round_"            # checkpoint-state prefix of the round in progress


def kt_rounds(size: int, g: int) -> int:
    """Rounds a partition of ``size`` systems needs with groups of <= g (size -> ceil(size/g))."""
    r = 0
    while size > 1:
        size = -(-size // g)
        r += 1
    return r


def kt_groups(survivors: np.ndarray, g: int) -> list[np.ndarray]:
    """Split one partition's survivors into ceil(s/g) groups of near-equal size (<= g)."""
    s = survivors.shape[0]
    if s <= 1:
        return []
    return [x for x in np.array_split(survivors, -(-s // g))]


class KT(Procedure):
    """Knockout tournament (Zhong & Hong 2022) with KN matches.

    The k systems are dealt round-robin into p = ``n_groups`` partitions
    (p is a procedure parameter, the "processors" of the paper; results do not
    depend on how many workers run it). In round r = 1, 2, ... the survivors of
    each partition are split into groups of at most ``g`` and KN with
    alpha_r = alpha / 2^r is run in every group; group winners advance until one
    per partition remains (R = max rounds). The partition winners meet in a
    final stage with error alpha / 2^(R+1): Rinott with fresh n0 samples
    (independent systems) or KN with CRN. The best must win each match, so
    PICS <= sum_r alpha/2^r + alpha/2^(R+1) < alpha: PCS >= 1-alpha under the IZ,
    normal outputs; E[total samples] = O(k).

    Zhong, Y. & Hong, L. J. (2022). Knockout-tournament procedures for
    large-scale ranking and selection in parallel computing environments.
    Oper. Res. 70(1), 432-453.
    """

    name = "kt"
    kind = "fixed_precision"
    guarantee = "PCS >= 1-alpha under the indifference zone"
    assumptions = "normal outputs; independent systems or common random numbers"
    supports_crn = True
    reference = "Zhong & Hong (2022), Oper. Res. 70(1):432-453"
    _parameter_constraints = {"alpha": ALPHA, "delta": DELTA, "n0": ints(2), "g": ints(2),
                              "n_groups": ints(1), "crn": CRN, "lookahead": optional(ints(1))}

    def __init__(self, alpha: float = 0.05, delta: float = 0.1, n0: int = 20, g: int = 20,
                 n_groups: int = 1, crn: bool = False, lookahead: int | None = None):
        self.alpha = alpha
        self.delta = delta
        self.n0 = n0
        self.g = g
        self.n_groups = n_groups
        self.crn = crn
        self.lookahead = lookahead
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_common(self.alpha, self.delta, self.n0)
        if isinstance(self.g, bool) or not isinstance(self.g, (int, np.integer)) or self.g < 2:
            raise ParameterError(f"g (group size of a KT match) must be an integer >= 2, got {self.g!r}")
        if isinstance(self.n_groups, bool) or not isinstance(self.n_groups, (int, np.integer)):
            raise ParameterError(f"n_groups (number of KT partitions p) must be an integer >= 1, "
                                 f"got {self.n_groups!r}")
        check_int("n_groups", self.n_groups, low=1)
        super()._validate_params()

    def run(self, ctx) -> ProcedureOutput:
        k = ctx.k
        alpha, delta, n0, g = float(self.alpha), float(self.delta), int(self.n0), int(self.g)
        crn = bool(self.crn)
        p = min(int(self.n_groups), k)
        part_of = np.arange(k) % p                   # round-robin deal
        sizes = np.bincount(part_of, minlength=p)
        R = max(kt_rounds(int(s), g) for s in sizes)
        st = dict(ctx.restored) if ctx.restored is not None else {}
        if "round" not in st:
            st["round"] = 0
            st["alive"] = np.ones(k, dtype=bool)
        alive = np.array(st["alive"], dtype=bool)
        st["alive"] = alive
        rnd = _as_int(st["round"])
        while rnd < R:      # a checkpoint inside round rnd + 1 holds its matches under ROUND
            rnd += 1
            groups = []
            for j in range(p):
                groups.extend(kt_groups(np.flatnonzero(alive & (part_of == j)), g))
            a_r = alpha / 2.0 ** rnd
            winners = self._round(ctx, groups, st, alpha=a_r, delta=delta, n0=n0, crn=crn)
            for grp, w in zip(groups, winners):
                alive[grp] = False
                alive[grp[int(w)]] = True
            for key in [key for key in st if key.startswith(ROUND)]:
                del st[key]
            st["round"] = rnd
            ctx.log("kt_round", round=rnd, alpha=a_r, matches=len(groups),
                    survivors=int(alive.sum()))
            ctx.boundary(st)
        finalists = np.flatnonzero(alive)
        a_f = alpha / 2.0 ** (R + 1)
        if finalists.shape[0] == 1:
            best = int(finalists[0])
        else:
            save = lambda: ctx.boundary(st)  # noqa: E731
            if crn:
                w = kn_stage(ctx, finalists, alpha=a_f, delta=delta, n0=n0, crn=True, st=st, save=save,
                             prefix="final_", lookahead=self.lookahead)
            else:
                w = rinott_stage(ctx, finalists, alpha=a_f, delta=delta, n0=n0, k_const=None, st=st,
                                 save=save, prefix="final_")
            best = int(finalists[w])
        return ProcedureOutput(best=best, extras={"rounds": R, "partitions": p, "final_alpha": a_f,
                                                  "finalists": finalists.tolist() if p <= 1000 else p,
                                                  "final_stage": ("kn" if crn else "rinott")
                                                  if finalists.shape[0] > 1 else "none"})

    def _round(self, ctx, groups: list[np.ndarray], st: dict, **kn) -> list[int]:
        """All matches of one round (see :func:`run_kn_matches`); each winner's position."""
        return run_kn_matches(ctx, groups, lookahead=self.lookahead, st=st, prefix=ROUND,
                              save=lambda: ctx.boundary(st), **kn).tolist()
