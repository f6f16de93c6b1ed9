"""FBKT: fixed-budget knockout tournament (Hong, Jiang & Zhong 2022).

Rule (total budget N, first-stage size n0, integer phi > 1, p groups):

1. Seeding: n0 samples of every system.
2. Systems are split round-robin into p' = min(p, k) groups (system i -> group i mod p');
   each group gets the budget B = (N - n0 k) / p'.
3. Round r = 1, 2, ... of a group with m >= 2 survivors has the budget
   N_r = floor(w_r B), w_r = r / (phi (phi - 1)) ((phi - 1) / phi)^r (sum over r >= 1 is 1).
   Survivors are seeded by their current (cumulative) sample means; with m odd the top seed
   gets a bye; the others play best-vs-worst (2nd vs 2nd-worst, ...). Every player gets
   floor(N_r / m) fresh samples and the larger sum of the round's samples wins (ties: the
   better seed). A group needs ceil(log2 m) rounds; R = ceil(log2(k / p')) overall.
4. Final: each of the p' group winners gets floor(w_{R+1} B) fresh samples (``final="round"``,
   as in the paper and PyPRS) or an equal share of all the budget left (``final="rest"``);
   the largest mean of the final samples is selected. With one group there is no final.

Budget: every allocation is a floor of a share of B and the weights of rounds 1..R+1 sum
to less than 1, so the total never exceeds N (``final="rest"`` spends what is left, still <= N).
If a round's per-player share floor(N_r / m) is 0 the better current mean wins the match.

Spend (why FBKT uses 70-95% of N): the weights are the paper's geometric series over an
unbounded number of rounds, but a group plays only ceil(log2 m) of them, so rounds 1..R spend
sum_{r<=R} w_r = 1 - q^R (1 + R / phi) of B, q = (phi - 1) / phi (phi = 3, R = 6: 74%), and
the floors lose a little more. With several groups the final adds w_{R+1}, or, with
``final="rest"``, everything left. With one group (no final) the tail share is not spent: that
is the procedure as published, and its asymptotic result is stated for it. The result's extras
report ``unspent`` (samples of N not used).

Guarantee: none at a finite budget. Asymptotically, PCS stays bounded away from 0 when N grows
linearly in k (rate for maintaining correct selection of order k, optimal), whereas
equal allocation, OCBA-type and other procedures in the paper's class need N of order
k log k. CRN is allowed: with ``crn=True`` the two players of every match (and all finalists)
use the same replication indices, so their comparisons are paired.

The group work of each round goes through ``ctx.run_groups`` with the module-level
:func:`_fbkt_round`, so a parallel backend runs the groups anywhere; the result depends on
``n_groups`` (an algorithm parameter) but never on the backend or the number of workers.
"""
from __future__ import annotations

import numpy as np

from ...errors import ParameterError, check_int
from ...params import CRN, Options, ints
from ..base import Procedure, ProcedureOutput, check_budget
from ._common import draw_chunked, restored_state


def round_weight(r: int, phi: int) -> float:
    """w_r = r / (phi (phi - 1)) ((phi - 1) / phi)^r, the share of a group's budget in round r."""
    return r / (phi * (phi - 1)) * ((phi - 1) / phi) ** r


def n_rounds(k: int, p: int) -> int:
    """R = ceil(log2(k / p)) computed exactly in integers (0 when k <= p)."""
    r = 0
    while p * (1 << r) < k:
        r += 1
    return r


def _play_round(ctx, seeded: np.ndarray, round_budget: int, crn: bool,
                id_order: np.ndarray | None = None) -> np.ndarray:
    """One knockout round among ``seeded`` (ids in ``ctx``, best seed first).

    ``id_order``: the positions of ``seeded`` sorted by id (default: seeded is id-sorted);
    samples are drawn in id order so the context's bookkeeping walks memory monotonically.
    Returns the positions (in ``seeded``) of the winners: the bye first, then match winners.
    """
    m = seeded.shape[0]
    bye = m % 2
    n_pairs = (m - bye) // 2
    top = np.arange(bye, bye + n_pairs, dtype=np.int64)              # better seeds
    bottom = np.arange(m - 1, m - 1 - n_pairs, -1, dtype=np.int64)   # their opponents
    n = int(round_budget) // m
    if n <= 0:
        win = top           # no samples to play with: the better current seed advances
    else:
        players = seeded[bye:]
        start = int(ctx.next_rep[players].max()) if crn else None
        pos = np.arange(bye, m, dtype=np.int64) if id_order is None else id_order
        if bye and id_order is not None:
            pos = pos[pos != 0]
        sums = np.empty(m)
        sums[pos] = draw_chunked(ctx, seeded[pos], n, start=start, want_sums=True)
        win = np.where(sums[top] >= sums[bottom], top, bottom)
    if bye:
        win = np.concatenate([np.zeros(1, dtype=np.int64), win])
    return win


def _fbkt_round(ctx, round_budget: int, crn: bool) -> np.ndarray:
    """Group task for ``ctx.run_groups``: the group's systems arrive in seed order."""
    return _play_round(ctx, np.arange(ctx.k, dtype=np.int64), round_budget, crn)


class FBKT(Procedure):
    """Fixed-budget knockout tournament (Hong, Jiang & Zhong 2022).

    Parameters
    ----------
    budget : total samples N (>= n0 * k).
    n0 : seeding samples per system (>= 1).
    phi : integer > 1 shaping the round budgets w_r = r/(phi(phi-1)) ((phi-1)/phi)^r.
    n_groups : p, the number of independent tournaments (an algorithm parameter; the
        result does not depend on how many workers run them). Capped at k.
    final : "round" (the winners get the round-(R+1) share, as in the paper) or "rest"
        (the winners share everything left of the budget).
    crn : common random numbers (matches are then paired on replication indices).
    """

    name = "fbkt"
    kind = "fixed_budget"
    notes = ("budget spent: rounds 1..R use 1 - q^R (1 + R/phi) of N - n0*k, q = (phi-1)/phi "
             "(phi = 3, R = 6: 74%), as published; with n_groups > 1, final='rest' spends the rest "
             "among the group winners; extras['unspent'] reports what was left")
    guarantee = ("asymptotic only: PCS bounded away from 0 with budget N = Theta(k); "
                 "no finite-budget guarantee")
    assumptions = "means comparable by sample sums; independent systems or CRN"
    supports_crn = True
    reference = ("Hong, Jiang & Zhong (2022), Solving large-scale fixed-budget ranking and "
                 "selection problems, INFORMS J. Computing 34(6):2930-2949")
    _parameter_constraints = {"budget": ints(2), "n0": ints(1), "phi": ints(2), "n_groups": ints(1),
                              "final": [Options(("round", "rest"))], "crn": CRN}

    def __init__(self, budget: int = 1000, n0: int = 8, phi: int = 3, n_groups: int = 1,
                 final: str = "round", crn: bool = False):
        self.budget = budget
        self.n0 = n0
        self.phi = phi
        self.n_groups = n_groups
        self.final = final
        self.crn = crn
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_int("budget", self.budget, low=2)
        check_int("n0", self.n0, low=1)
        check_int("phi", self.phi, low=2)
        check_int("n_groups", self.n_groups, low=1)
        if self.final not in ("round", "rest"):
            raise ParameterError(f"final must be 'round' or 'rest', got {self.final!r}")
        super()._validate_params()

    def check_problem(self, problem) -> None:
        super().check_problem(problem)
        check_budget(self.budget, int(self.n0), problem.k)

    def budget_limit(self, problem) -> int:
        return int(self.budget)

    # ------------------------------------------------------------------ plan
    def plan(self, k: int) -> dict:
        """Group count, per-group budget B, round count R and round budgets N_1..N_{R+1}."""
        p = min(int(self.n_groups), k)
        B = (int(self.budget) - int(self.n0) * k) / p
        R = n_rounds(k, p)
        phi = int(self.phi)
        Nr = [int(np.floor(round_weight(r, phi) * B)) for r in range(1, R + 2)]
        return {"p": p, "B": B, "R": R, "round_budgets": Nr}

    # ------------------------------------------------------------------ run
    def run(self, ctx) -> ProcedureOutput:
        k = ctx.k
        plan = self.plan(k)
        p, R, Nr = plan["p"], plan["R"], plan["round_budgets"]
        N = int(self.budget)
        group_of = np.arange(k, dtype=np.int64) % p
        st = restored_state(ctx)
        stage = int(st.get("stage", 0))
        if stage == 0:
            draw_chunked(ctx, np.arange(k, dtype=np.int64), int(self.n0))
            ctx.log("seeding", n0=int(self.n0), groups=p, rounds=R)
            survivors = np.arange(k, dtype=np.int64)
            rnd = 1
            stage = 1
            ctx.boundary({"stage": 1, "round": 1, "survivors": survivors})
        else:
            survivors = np.asarray(st["survivors"], dtype=np.int64)
            rnd = int(st["round"])
        if stage == 1:
            while True:
                groups, order = self._seeded_groups(ctx, survivors, group_of, p)
                playing = [g for g in groups if g.shape[0] >= 2]
                if not playing:
                    break
                budget_r = Nr[rnd - 1] if rnd - 1 < len(Nr) else 0
                # safety: never let floors of float shares push past N
                budget_r = min(budget_r, (N - ctx.total) // len(playing))
                if p == 1:
                    # a single tournament is one task anyway: play it on this context
                    inv = np.empty(survivors.shape[0], dtype=np.int64)
                    inv[order] = np.arange(survivors.shape[0], dtype=np.int64)
                    wins = [_play_round(ctx, playing[0], int(budget_r), bool(self.crn), inv)]
                else:
                    wins = ctx.run_groups(_fbkt_round, playing, round_budget=int(budget_r),
                                          crn=bool(self.crn))
                nxt = [g[np.asarray(w, dtype=np.int64)] for g, w in zip(playing, wins)]
                nxt += [g for g in groups if g.shape[0] == 1]
                survivors = np.sort(np.concatenate(nxt))
                ctx.log("round", round=rnd, round_budget=int(budget_r), survivors=int(survivors.shape[0]))
                rnd += 1
                ctx.boundary({"stage": 1, "round": rnd, "survivors": survivors})
            stage = 2
        winners = survivors
        if winners.shape[0] == 1:
            return ProcedureOutput(best=int(winners[0]), extras={"rounds": rnd - 1, "groups": p,
                                                                 "unspent": int(N - ctx.total)})
        # final among the group winners
        if self.final == "round":
            n_fin = Nr[R] if R < len(Nr) else 0
        else:
            n_fin = (N - ctx.total) // winners.shape[0]
        n_fin = min(n_fin, (N - ctx.total) // winners.shape[0])
        if n_fin <= 0:
            best = int(winners[np.argmax(ctx.means()[winners])])
        else:
            start = int(ctx.next_rep[winners].max()) if self.crn else None
            sums = draw_chunked(ctx, winners, n_fin, start=start, want_sums=True)
            best = int(winners[int(np.argmax(sums))])
        ctx.log("final", finalists=int(winners.shape[0]), per_finalist=int(max(n_fin, 0)))
        return ProcedureOutput(best=best, extras={"rounds": rnd - 1, "groups": p,
                                                  "finalists": winners.tolist(),
                                                  "unspent": int(N - ctx.total)})

    @staticmethod
    def _seeded_groups(ctx, survivors: np.ndarray, group_of: np.ndarray, p: int):
        """Survivors of each group ordered by current mean, best first (and, for one group,
        the permutation of the id-sorted survivors that gives that order).

        Survivors arrive sorted by id, so the order (ties included) is deterministic and
        independent of the backend."""
        means = ctx.sums[survivors] / ctx.n[survivors]
        order = np.argsort(-means)
        ranked = survivors[order]
        if p == 1:
            return [ranked], order
        g = group_of[ranked]
        by_group = np.argsort(g, kind="stable")
        ranked = ranked[by_group]
        counts = np.bincount(g, minlength=p)
        return [a for a in np.split(ranked, np.cumsum(counts)[:-1]) if a.shape[0] > 0], None


__all__ = ["FBKT", "round_weight", "n_rounds"]
