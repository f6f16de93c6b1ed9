"""P3C (parallel correlation clustering and conquer) and divide and conquer.

Zhang & Peng, "Parallel correlation clustering and conquer", arXiv 2402.02196.
Only the abstract is public; this design is ours and measured in studies/p3c.

Pipeline (both classes): partition the k systems into groups; run a base
procedure inside every group (``ctx.run_groups``, so groups may run on other
processes or MPI ranks); run a final stage among the group winners.
P3C partitions by correlation: an n_p-sample CRN pilot, standardized, clustered
by spherical k-means (:mod:`rands.clustering`). Divide and conquer (DC) uses a
seeded random or round-robin partition and no pilot.

Why it saves samples: under CRN Var(X_i - X_l) = s_i^2 + s_l^2 - 2 rho_il s_i s_l,
and KN/KT-type elimination needs about h^2 Var(X_i - X_l)/delta^2 samples per
comparison; a cluster of highly correlated systems is cheap to resolve, and only
the m cluster winners meet at full variance.

Fixed precision (``budget=None``; bases "kn", "kt", any registered
fixed-precision procedure that allows CRN)
--------------------------------------------------------------------------
Error split: the base runs inside every group at level alpha_w = alpha_split *
alpha and the final stage among winners at alpha_f = alpha - alpha_w (DC: alpha/2
each; P3C: alpha_split and the first-stage sizes chosen from the pilot, see ``P3C``). Guarantee, under the indifference zone and normal outputs:
P(ICS) <= P(best eliminated inside its own group) + P(best loses the final)
<= alpha_w + alpha_f = alpha. Only the best's group matters (no split of alpha
over groups) provided, conditionally on the partition, the base procedure's
guarantee holds in that group, which needs the partition to be independent of
the data the base uses. The final stage draws fresh replications, common to
all winners (CRN-aligned), independent of how they won.

Pilot modes (the pilot-reuse problem, findings note):
- ``"split"`` (default, guaranteed): the pilot (replications 0..pilot-1) is
  used to cluster; the base draws its own first stage from replications
  >= pilot, independent of the pilot, hence of the partition, and estimates its
  variances there. Cost: k*pilot extra samples, so the pilot is kept small
  (default: adaptive, starting at max(3, n0 // 2), see ``P3C``): clustering errors
  only cost efficiency, never validity. With ``head_start`` (default) a KN base's
  running sums also start from the pilot's sums (its means, which the clustering
  never reads), which returns up to pilot samples a system (proof in ``P3C``).
- ``"reuse"`` (NOT guaranteed): pilot = n0 and the base's first stage is the
  pilot itself (replayed, not recounted). Systems grouped partly by noise have
  pilot difference variances biased low, so the base eliminates too eagerly:
  PCS fell to 0.86-0.91 (nominal 0.95) at rho = 0.5 in the findings note. Kept
  as an option for comparison; do not use it when the guarantee matters.
- oracle partition (``partition=labels``): known clusters, no pilot.
Rationale for "split" over the alternatives: a variance correction needs the
law of the pilot correlations given the clustering (not available in closed
form); a validity check on clusters needs fresh data anyway; splitting the
residual contrasts of one first stage (cluster on some, estimate variances on
the rest) is valid but needs the base to accept an external variance estimate
with fewer degrees of freedom, which the black-box bases do not. Splitting is
the cheapest design that keeps any base's own guarantee intact.

Measured (studies/p3c/README.md, "KN's boundary parameter"; symmetric clustered benchmark,
KN, n0 = 10, 20 macroreps a cell on the regime seeds; ``studies/p3c/run_chain_k.sh``, as
shipped: head start and kn_c="auto"): DC/P3C at delta = 0.1, p = 4/8/16: k = 1024:
3.6/5.3/8.6 at rho 0.9, 3.9/6.8/12.5 at 0.95, 4.5/10.1/15.2 at 0.99, p/2 met in all 9
cells; k = 4096: 3.3/4.3/6.3, 3.0/4.6/7.6, 3.3/7.0/10.9, met in 7 of 9 (not p = 16 at rho
0.9 and 0.95: DC's groups of 256 hold 16 systems of each cluster there, so DC itself is
cheap, and KN inside clusters of 256 costs at least 100 samples a system at rho 0.9 even
with known variances). Against DC with n0 = 30 (k = 1024) about half of that (4.6 at
p = 16, rho = 0.9), since DC gains from a larger first stage too. PCS over 1000 macroreps
(``regime.py pcs ... --out pcs5_*``): 0.973 [0.961, 0.981] at k = 256, p = 64, rho = 0.3,
pilot 3 (ARI 0.008); 0.970 [0.957, 0.979] at p = 16, rho = 0.3.

Big groups: KN holds a pairwise S^2 matrix, (group size)^2 entries. Groups
larger than ``max_pairwise`` run with ``large_base`` (default "kt", knockout
groups of g, linear memory) at the same alpha_w: the guarantee is unchanged.

Fixed budget (``budget=N``; screening-free variant)
--------------------------------------------------
Pilot of n0 CRN samples per system (also the exploration stage, no guarantee
to protect), clustering, then inside each group the rest of the within budget
is allocated by ``base`` (default "greedy": explore-first greedy, no pairwise
elimination; any registered fixed-budget base may be named). Budget split:
``final_fraction`` of N (default 0.1) is kept for the final stage, an equal
allocation of fresh CRN-aligned samples among the group winners (their
within-group means carry a winner's-curse bias); the rest, after the pilot, is
shared among groups in proportion to their size. No finite-budget guarantee.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..clustering import (adjusted_rand_index, balance_assignment, between_cluster_correlation,
                          mate_correlation, mean_within_correlation, spherical_kmeans, standardize)
from ..errors import ParameterError, check_alpha, check_delta, check_float, check_int
from ..params import (ALPHA, CRN, DELTA, NAME, PROBABILITY_OPEN, Boolean, Interval, Mapping_, Options,
                      Sequence_, ints, optional)
from .base import Procedure, ProcedureOutput
from .fixed_precision.constants import kn_h2_many
from .fixed_precision.kn_engine import run_kn_matches
from .group import run_base

__all__ = ["P3C", "DivideAndConquer"]

_FIXED_BUDGET_BUILTIN = {"greedy"}


def _base_class(name: str):
    from . import procedure_class
    return procedure_class(name)


_GUARANTEE = ("PCS >= 1-alpha under the IZ, normal outputs (alpha_split*alpha inside the best's group "
              "+ the rest in a fresh final stage); none with a budget or pilot_mode='reuse'")


class _Pipeline(Procedure):
    """Partition -> base in each group -> final among winners (shared by P3C and DC)."""

    kind = "fixed_precision"
    guarantee = _GUARANTEE
    assumptions = "normal outputs; CRN (correlation clustering needs it)"
    supports_crn = True
    reference = "Zhang & Peng (2024), arXiv 2402.02196 (design ours)"
    _parameter_constraints = {"base": optional([*NAME, Options(("greedy",))]), "alpha": ALPHA, "delta": DELTA,
                              "n0": ints(2), "final": optional(NAME), "alpha_split": PROBABILITY_OPEN,
                              "base_params": optional([Mapping_()]), "max_pairwise": ints(2),
                              "large_base": optional(NAME), "large_base_params": optional([Mapping_()]),
                              "budget": optional(ints(2)),
                              "final_fraction": [Interval(float, 0.0, 1.0, closed="left")]}

    # ----------------------------------------------------------- validation
    def _check_alpha_split(self) -> None:
        """Both shares of alpha stay >= 1e-10, the smallest error the constants are computed for."""
        if isinstance(self.alpha_split, str):
            return
        for part, share in (("alpha*alpha_split", self.alpha * self.alpha_split),
                            ("alpha*(1-alpha_split)", self.alpha * (1.0 - self.alpha_split))):
            if share < 1e-10:
                raise ParameterError(f"procedure {self.name!r}: {part} = {share:.3g} is below 1e-10 (alpha="
                                     f"{self.alpha}, alpha_split={self.alpha_split}); the group and final "
                                     "stages need error shares >= 1e-10")

    def _validate_common(self) -> None:
        self._set_kind()
        check_alpha(self.alpha)
        check_delta(self.delta)
        check_int("n0", self.n0, low=2)
        if not (isinstance(self.alpha_split, str) and self.alpha_split == "auto" and self.name == "p3c"):
            check_float("alpha_split", self.alpha_split, low=0.0, high=1.0, low_open=True, high_open=True)
        check_int("max_pairwise", self.max_pairwise, low=2)
        for attr, target in (("base_params", self.base), ("large_base_params", self.large_base)):
            bp = getattr(self, attr)
            if bp is not None and not isinstance(bp, dict):
                raise ParameterError(f"{attr} must be a dict of parameters of {target!r}, got {bp!r}")
            if not bp:
                continue
            reserved = sorted(set(bp) & {"alpha", "delta", "n0", "crn", "budget"})
            if reserved:
                raise ParameterError(f"{attr} may not set {reserved}: the pipeline sets them (alpha "
                                     f"split, shared n0, CRN, budget shares); use P3C's own parameters")
            if isinstance(target, str):
                valid = {"batch"} if target == "greedy" else set(_base_class(target)._param_names())
                unknown = sorted(set(bp) - valid)
                if unknown:
                    raise ParameterError(f"{attr} {unknown} are not parameters of {target!r}; "
                                         f"valid: {sorted(valid)}")
        if self.budget is None:
            for nm in ("base", "final", "large_base"):
                v = getattr(self, nm)
                if v is None and nm != "base":
                    continue
                if not isinstance(v, str):
                    raise ParameterError(f"{nm} must be a procedure name, got {v!r}")
                cls = _base_class(v)
                if cls.kind != "fixed_precision":
                    raise ParameterError(f"{nm}={v!r} is a {cls.kind} procedure; without budget P3C/DC "
                                         f"need a fixed-precision base (e.g. 'kn', 'kt'); give budget=N "
                                         f"for the fixed-budget variant")
                if self._crn and not cls.supports_crn:
                    raise ParameterError(f"{nm}={v!r} does not allow CRN, which the pipeline uses "
                                         f"(correlation clustering needs it); use 'kn' or 'kt'")
        else:
            check_int("budget", self.budget, low=2)
            check_float("final_fraction", self.final_fraction, low=0.0, high=1.0, high_open=True)
            if not isinstance(self.base, str):
                raise ParameterError(f"base must be a procedure name, got {self.base!r}")
            if self.base not in _FIXED_BUDGET_BUILTIN:
                cls = _base_class(self.base)
                if cls.kind != "fixed_budget":
                    raise ParameterError(f"base={self.base!r} is {cls.kind}; with budget=N the base must be "
                                         f"'greedy' or a fixed-budget procedure ('equal', 'ocba', 'efg')")

    @property
    def _crn(self) -> bool:
        return True

    @property
    def crn_enabled(self) -> bool:
        return self._crn

    def _set_kind(self) -> None:
        """kind and guarantee depend on the parameters: set them on the instance."""
        if self.budget is not None:
            self.kind = "fixed_budget"
            self.guarantee = "none at finite budget (screening-free allocation)"
        elif getattr(self, "pilot_mode", "split") == "reuse":
            self.kind = "fixed_precision"
            self.guarantee = "none: pilot reused as the base's first stage (biased variances)"
        else:
            self.kind = "fixed_precision"
            self.guarantee = _GUARANTEE

    def budget_limit(self, problem) -> int | None:
        return None if self.budget is None else int(self.budget)

    def _n_pilot(self) -> int:
        return 0

    def check_problem(self, problem) -> None:
        super().check_problem(problem)
        if self.budget is not None:
            need = problem.k * max(self.n0, self._n_pilot())
            if self.budget < need + 2 * self.n0:
                raise ParameterError(f"budget={self.budget} is below the first stage n0*k = {need} plus a "
                                     f"final stage; give budget >= {need + 2 * self.n0}")

    # ----------------------------------------------------------- base parameters
    def _params_for(self, name: str, **common) -> dict:
        if name == "greedy":
            out = {"n0": self.n0}
            out.update({k: v for k, v in common.items() if k == "budget"})
            out.update(self.base_params or {})
            return out
        valid = set(_base_class(name)._param_names())
        out = {k: v for k, v in common.items() if k in valid}
        if "crn" in valid:
            out["crn"] = self._crn
        if "n0" in valid:
            out["n0"] = self.n0
        if "delta" in valid and self.budget is None:
            out["delta"] = self.delta
        if name == self.base:
            out.update(self.base_params or {})
        elif name == self.large_base:
            out.update(self.large_base_params or {})
        return out

    # ----------------------------------------------------------- the pipeline
    def _partition(self, ctx) -> tuple[np.ndarray, int, dict]:
        raise NotImplementedError

    def run(self, ctx) -> ProcedureOutput:
        st = dict(ctx.restored or {})
        stage = int(st.get("stage", 0))
        if stage < 1:
            labels, m, info = self._partition(ctx)
            st = {"stage": 1, "labels": labels, "m": m, "pilot_total": int(ctx.total),
                  "alpha_w": float(info.get("alpha_w", self._fixed_alpha_w())),
                  "refined": int(info.get("refined", 0)),
                  "n0_w": int(info.get("n0_w", self.n0)), "n0_f": int(info.get("n0_f", self.n0)),
                  "c_w": int(info.get("c_w", 0)), "c_f": int(info.get("c_f", 0)),
                  "pilot_history": np.array([[n, np.nan if a is None else a]
                                             for n, a in info.get("pilot_history", [])], dtype=np.float64)}
            if "cost" in info:
                st["cost"] = info["cost"]
            ctx.log("partition", groups=m, samples=int(ctx.total), **{k: v for k, v in info.items()
                                                                      if np.isscalar(v)})
            ctx.boundary(st)
        labels = np.asarray(st["labels"], dtype=np.int64)
        m = int(st["m"])
        order = np.argsort(labels, kind="stable")
        sizes_all = np.bincount(labels, minlength=m)
        groups = [g for g in np.split(order, np.cumsum(sizes_all)[:-1]) if g.size]
        sizes = np.array([g.size for g in groups])
        if stage < 2:
            cost = np.asarray(st["cost"], dtype=np.float64)[sizes_all > 0] if "cost" in st \
                else sizes.astype(np.float64)
            pilot_n = int(st["pilot_total"]) // max(int(ctx.k), 1)
            winners = self._within(ctx, groups, sizes, cost, float(st["alpha_w"]),
                                   int(st.get("n0_w", self.n0)), self._head_n(pilot_n), int(st.get("c_w", 0)))
            st.update({"stage": 2, "winners": winners, "within_total": int(ctx.total),
                       "within_n": np.asarray(ctx.n, dtype=np.int64) - pilot_n})
            ctx.boundary(st)
        winners = np.asarray(st["winners"], dtype=np.int64)
        best, final_n = self._final(ctx, winners, float(st["alpha_w"]), int(st.get("n0_f", self.n0)),
                                    int(st.get("c_f", 0)))
        extras = {"n_groups": int(len(groups)), "group_sizes": sizes.tolist(),
                  "winners": winners.tolist(), "pilot_samples": int(st["pilot_total"]),
                  "within_samples": int(st["within_total"]) - int(st["pilot_total"]),
                  "final_samples": final_n, "labels": labels, "alpha_w": float(st["alpha_w"]),
                  "within_n": np.asarray(st.get("within_n", []), dtype=np.int64),
                  "refined": int(st.get("refined", 0)),
                  "n0_within": int(st.get("n0_w", self.n0)), "n0_final": int(st.get("n0_f", self.n0)),
                  "c_within": int(st.get("c_w", 0)) or None, "c_final": int(st.get("c_f", 0)) or None,
                  "pilot_history": [[int(n), None if not np.isfinite(a) else float(a)] for n, a in
                                    np.asarray(st.get("pilot_history", np.zeros((0, 2)))).reshape(-1, 2)]}
        if self.budget is None:
            big = int(np.sum(sizes[sizes > 1] > self.max_pairwise)) if self.large_base else 0
            extras["group_bases"] = {k: v for k, v in ((self.base, int(np.sum(sizes > 1)) - big),
                                                       (self.large_base, big)) if v}
        return ProcedureOutput(best=int(best), extras=extras)

    def _fixed_alpha_w(self) -> float:
        split = 0.5 if isinstance(self.alpha_split, str) else float(self.alpha_split)
        return float(self.alpha) * split

    def _head_n(self, pilot_n: int) -> int:
        """Pilot samples a KN group starts from (the head start; 0: none)."""
        return 0

    def _within(self, ctx, groups: list[np.ndarray], sizes: np.ndarray, cost: np.ndarray,
                a_w: float, n0_w: int, head_n: int = 0, c_w: int = 0) -> np.ndarray:
        """Winner of every group; ``c_w`` > 0: KN's boundary parameter for KN groups (0: the base's own)."""
        replay = self._replay()
        # CRN alignment: every member of a group starts at the group's largest next replication
        starts = [int(ctx.next_rep[g].max()) for g in groups]
        order = np.lexsort((np.arange(len(groups)), -cost))   # LPT order for dynamic executors
        workers = max(1, int(getattr(ctx.executor, "n_workers", 1)))
        assign, loads = balance_assignment(cost, workers)
        winners = np.empty(len(groups), dtype=np.int64)
        if self.budget is None:
            calls: dict[tuple, list[int]] = {}
            for j in order:
                name = self.base if sizes[j] <= self.max_pairwise or self.large_base is None \
                    else self.large_base
                calls.setdefault((name,), []).append(int(j))
            for (name,), idx in calls.items():
                params = self._params_for(name, alpha=a_w)
                if "n0" in params and self.budget is None and replay == 0:
                    params["n0"] = int(n0_w)
                if name == "kn" and c_w:
                    params["c"] = int(c_w)
                if name == "kn" and replay == 0:     # every KN match of the step in bulk
                    gs = [groups[j] for j in idx]
                    hs = None
                    if head_n:                       # the pilot's sums: replications 0..head_n-1
                        rows = np.concatenate(gs)
                        if np.any(ctx.n[rows] != head_n) or np.any(ctx.next_rep[rows] != head_n):
                            raise RuntimeError("head start: the groups hold samples beyond the pilot")
                        hs = ctx.sums[rows].copy()
                    pos = run_kn_matches(ctx, gs, alpha=params["alpha"],
                                         delta=params["delta"], n0=params["n0"],
                                         crn=bool(params.get("crn", False)),
                                         lookahead=params.get("lookahead"), head_sums=hs, head_n=head_n,
                                         c=int(params.get("c", 1)))
                    for j, w in zip(idx, pos):
                        winners[j] = groups[j][int(w)]
                    continue
                res = ctx.run_groups(run_base, [groups[j] for j in idx], base=name, params=params,
                                     replay=replay, costs=[float(cost[j]) for j in idx],
                                     starts=[starts[j] for j in idx])
                for j, r in zip(idx, res):
                    winners[j] = groups[j][r["best"]]
        else:
            pool = int(self.budget) - int(ctx.total) - self._final_budget()
            share = np.floor(pool * sizes / sizes.sum()).astype(np.int64)
            # group j may spend share_j new samples; a registered base's own budget also
            # counts the replayed pilot it sees first
            by_key: dict[tuple, list[int]] = {}
            for j in order:
                by_key.setdefault((int(share[j]), int(sizes[j])), []).append(int(j))
            for (b, size), idx in by_key.items():
                total_b = b if self.base == "greedy" else b + replay * size
                params = self._params_for(self.base, budget=total_b)
                res = ctx.run_groups(run_base, [groups[j] for j in idx], base=self.base, params=params,
                                     replay=replay, costs=[float(cost[j]) for j in idx],
                                     starts=[starts[j] for j in idx])
                for j, r in zip(idx, res):
                    winners[j] = groups[j][r["best"]]
        ctx.log("within", groups=len(groups), loads=loads.tolist(), assignment=assign.tolist())
        return winners

    def _replay(self) -> int:
        return 0

    def _final_budget(self) -> int:
        if self.budget is None:
            return 0
        return int(np.floor(self.final_fraction * self.budget))

    def _final(self, ctx, winners: np.ndarray, a_w: float, n0_f: int, c_f: int = 0) -> tuple[int, int]:
        if winners.size == 1:
            return int(winners[0]), 0
        before = ctx.total
        start = int(ctx.next_rep.max())              # fresh replications, common to all winners
        if self.budget is None:
            name = self.final or self.base
            params = self._params_for(name, alpha=self.alpha - a_w)
            if "n0" in params:
                params["n0"] = int(n0_f)
            if name == "kn" and c_f:
                params["c"] = int(c_f)
            if name != self.base:
                params.pop("budget", None)
            res = ctx.run_groups(run_base, [winners], base=name, params=params, replay=0,
                                 starts=[start])[0]
            best = int(winners[res["best"]])
        else:
            per = (int(self.budget) - int(ctx.total)) // winners.size
            if per < 1:
                raise ParameterError(f"budget={self.budget} leaves no final-stage samples; raise it or "
                                     f"final_fraction")
            v = ctx.draw(winners, per, start=start)
            best = int(winners[int(np.argmax(v.mean(axis=1)))])
        ctx.log("final", winners=int(winners.size), samples=int(ctx.total - before))
        return best, int(ctx.total - before)


#: mean samples per system of KN beyond its first stage, as a fraction of the triangle's end
#: h^2 s_D^2 / delta^2 (measured 0.26-0.29 at k = 1024, p = 16, rho = 0.9, delta = 0.1, slippage,
#: n0 = 10..30; studies/p3c/README.md); only steers the pilot-based choices, never validity.
_KN_FRACTION = 0.27

#: first-stage sizes searched (times n0) for the within-cluster and the final KN (n0_auto)
_N0_FACTORS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _kn_per_system(size, a: float, sd2, n0: int, delta: float, head=0, c: int = 1):
    """Heuristic expected samples per system of KN in a group: n0 + f h^2 s_D^2 / delta^2.

    h^2 = 2 eta (n0 - 1) with Kim & Nelson's (2001) eta for size systems at error a,
    f = :data:`_KN_FRACTION`. A larger n0 buys a smaller h^2 (the t-like penalty of
    estimating s_D^2 from n0 - 1 degrees of freedom), which is why n0_auto searches it.
    With a head start of ``head`` pilot samples a system eliminated after S sequential
    samples takes max(S - head, 0) new ones; with S taken exponential with mean
    mu = f h^2 s_D^2 / delta^2 that is n0 + mu exp(-head / mu) (about mu - head for a long
    sequential stage, and never 0 for a short one, which would push alpha_split to its floor).

    For the boundary parameter c > 1, h^2 = h^2(c) and
    f = :data:`_KN_FRACTION` * 3 / (2c + 1): a pair with drift delta leaves the region
    at h^2 S^2 / ((2c + 1) delta^2) (at h^2 S^2 / (3 delta^2) for c = 1). That only holds
    where the sequential stage is long and S^2 has many degrees of freedom: c > 1 is eligible
    where n0 >= :data:`_C_MIN_N0` and c = 1's sequential mean is at least :data:`_C_LONG`
    times the first screening's stage head + n0; elsewhere c is charged c = 1's estimate times
    :data:`_C_PENALTY`. Calibrated on the regime map with c = 2 forced against c = 1 on the
    same seeds (studies/p3c/README.md, section "KN's boundary parameter"): c = 2 paid where
    the sequential stage was long and n0 >= 30, and cost a few % near the first-stage floor
    and where the model then chose n0 = 20-24 (up to +6 % at k = 1024, p = 16, rho = 0.9).
    """
    size = np.asarray(size, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        eta = 0.5 * ((2.0 * a / np.maximum(size - 1.0, 1.0)) ** (-2.0 / (float(n0) - 1.0)) - 1.0)
    h2 = 2.0 * eta * (float(n0) - 1.0)
    mu = _KN_FRACTION * h2 * np.asarray(sd2) / float(delta) ** 2
    one = float(n0) + _after_head(mu, head)
    if c == 1:
        return one
    eligible = (int(n0) >= _C_MIN_N0) & (mu >= _C_LONG * (np.asarray(head) + float(n0)))
    out = one * _C_PENALTY
    if np.any(eligible):
        uniq, inv = np.unique(np.maximum(size, 2.0), return_inverse=True)
        h2c = kn_h2_many(uniq, float(a), int(n0), int(c))[inv].reshape(size.shape)
        mu_c = _KN_FRACTION * 3.0 / (2 * c + 1) * h2c * np.asarray(sd2) / float(delta) ** 2
        out = np.where(eligible, float(n0) + _after_head(mu_c, head), out)
    return out


def _after_head(mu, head):
    """Mean of max(S - head, 0) for S exponential with mean mu (mu where there is no head start)."""
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.where(np.asarray(head) > 0, mu * np.exp(-np.asarray(head) / np.where(mu > 0, mu, 1.0)), mu)


def _group_cost(sizes: np.ndarray, rho: np.ndarray, svar: np.ndarray, proc, a_w: float | None = None,
                n0: int | None = None, head: int = 0, c: int = 1) -> np.ndarray:
    """Estimated samples of each group (LPT placement on workers, the pilot's choices).

    Fixed precision: size * (n0 + f h^2 s_D^2 / delta^2) with s_D^2 = 2 s^2 (1 - rho)
    from the pilot (mean variance s^2 and mean correlation rho of the cluster) and
    KN's h^2 for the group size at a_w (boundary parameter c), less the ``head`` start where the
    group runs KN;
    fixed budget: the group's share (its size).
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    if proc.budget is not None:
        return sizes
    if a_w is None:
        a_w = proc._fixed_alpha_w()
    sd2 = 2.0 * svar * np.clip(1.0 - rho, 0.0, 2.0)
    kn = (sizes <= proc.max_pairwise) | (proc.large_base is None) if proc.base == "kn" else False
    per = _kn_per_system(sizes, float(a_w), sd2, proc.n0 if n0 is None else n0, proc.delta,
                         np.where(kn, float(head), 0.0), c if proc.base == "kn" else 1)
    return np.where(sizes > 1, sizes * per, 0.0)


def _expected_cost(proc, xs: np.ndarray, svar: np.ndarray, labels: np.ndarray, m: int,
                   splits, n0s=None, head: int = 0, cs=(1,)) -> tuple:
    """Pilot estimate of within + final samples, minimised over alpha_split, first stages and c.

    Within: :func:`_group_cost` per cluster at alpha_split*alpha; final: the non-empty
    clusters' winners at the rest, s_D^2 = 2 s^2 (1 - mean between-cluster correlation).
    ``n0s``: first-stage sizes searched, separately for the within stage and the final
    (default: n0 only); ``head``: the within KN's head start (pilot samples); ``cs``: KN
    boundary parameters searched, separately for the within stage and the final. Reads the
    pilot's standardized rows and variances only, never its means. Returns (estimate,
    alpha_split, per-cluster cost, n0_within, n0_final, c_within, c_final).
    """
    n0s = (int(proc.n0),) if n0s is None else tuple(int(v) for v in n0s)
    sizes = np.bincount(labels, minlength=m)
    rho = np.nan_to_num(mean_within_correlation(xs, labels, m))
    svc = np.bincount(labels, weights=svar, minlength=m) / np.maximum(sizes, 1)
    nz = sizes > 0
    n_w = int(nz.sum())
    if n_w > 1:
        B = between_cluster_correlation(xs, labels, m)[np.ix_(nz, nz)]
        rb = float(np.nanmean(B))
    else:
        rb = 0.0
    sd2_f = 2.0 * float(np.mean(svar)) * min(max(1.0 - rb, 0.0), 2.0)
    grid = [(n, c) for c in cs for n in n0s]
    best = (np.inf, float(splits[0]), None, n0s[0], n0s[0], cs[0], cs[0])
    for sp in splits:
        a_w = float(proc.alpha) * float(sp)
        costs = [_group_cost(sizes, rho, svc, proc, a_w, n, head, c) for n, c in grid]
        iw = int(np.argmin([v.sum() for v in costs]))
        fins = [n_w * float(_kn_per_system(n_w, float(proc.alpha) - a_w, sd2_f, n, proc.delta, 0, c))
                if n_w > 1 else 0.0 for n, c in grid]
        jf = int(np.argmin(fins))
        tot = float(costs[iw].sum()) + fins[jf]
        if tot < best[0]:
            best = (tot, float(sp), costs[iw], grid[iw][0], grid[jf][0], grid[iw][1], grid[jf][1])
    return best


#: KN boundary parameters c searched by kn_c="auto": c = 3 was no cheaper than c = 2 where c = 2
#: paid (k = 4096, p = 16, delta = 0.1: 117.8 vs 117.0 samples a system at rho 0.9, 74.8 vs 72.5
#: at rho 0.95, 3-4 seeds)
_C_GRID = (1, 2)
#: c > 1 is eligible only with a first stage of at least this size ...
_C_MIN_N0 = 30
#: ... and where c = 1's sequential mean is at least this many times head + n0
_C_LONG = 2.0
#: c > 1 where it is not eligible: c = 1's estimate times this (the median measured loss)
_C_PENALTY = 1.025

#: alpha_split values searched by alpha_split="auto"
_SPLIT_GRID = tuple(np.round(np.linspace(0.05, 0.95, 19), 2))


class P3C(_Pipeline):
    """Clustering and conquer: CRN pilot, spherical k-means, base per cluster, final stage.

    Parameters
    ----------
    base : base procedure inside clusters: "kn", "kt", ... (fixed precision) or, with
        ``budget``, "greedy" (screening-free, default then), "equal", "ocba", "efg".
    alpha, delta : PCS target 1-alpha and indifference zone (fixed precision).
    n0 : first-stage size of the base procedures (and exploration size with a budget); with
        ``n0_auto`` the smallest first stage searched.
    n0_auto : (split fixed precision) choose the first-stage size of the within-cluster base
        and, separately, of the final from n0 x (1, 1.5, 2, 3, 4, 6), minimising the pilot's
        estimate of within + final samples jointly with alpha_split (default True; False:
        n0 everywhere). KN's h^2 = 2 eta (n0 - 1) falls from 30 (n0 = 10) to 17 (n0 = 30)
        for 64 systems at alpha 0.04, so where the sequential stage dominates a larger first
        stage pays for itself; at the n0 floor (rho near 1, large delta) n0 stays.
    pilot : CRN pilot samples per system for clustering (split mode). None (default):
        "adaptive" in split fixed-precision mode, n0 in reuse mode or with a budget.
        "adaptive": start at max(3, n0 // 2) and double while the partitions from n and 2n
        disagree (ARI < ``stable_ari``) and k * 2n <= ``pilot_cap`` * (pilot estimate of
        the within + final samples), up to ``pilot_max``. An integer: that fixed size.
    pilot_cap, stable_ari, pilot_max : the adaptive pilot's rule (above). pilot_cap = 0.25
        (0.1 before the issue 16 review: with n0_auto the estimate of the rest fell, the 10 %
        cap then stopped the pilot at 5 at rho = 0.95, ARI 0.84, and the strays cost more than
        a 10-sample pilot; studies/p3c/README.md). The cap compares with the rest as it would
        cost without ``head_start`` (so the head start leaves the pilot sizes unchanged).
    refine : move systems whose mean pilot correlation with their cluster mates is below
        ``refine_ratio`` times their cluster's mean within correlation into one residual
        group, run like any other (a pilot-only decision; default False: it moved no system
        once the adaptive pilot had grown, studies/p3c/regime.md).
    n_clusters : m, the number of clusters (min(m, k) used).
    pilot_mode : "split" (guaranteed, default) or "reuse" (pilot = base's first stage; NOT
        guaranteed).
    partition : optional known cluster labels (oracle); no pilot is drawn.
    final : procedure of the final stage (default: base); fresh CRN samples.
    alpha_split : fraction of alpha spent inside clusters; "auto" (default): the value of
        0.05, 0.10, ..., 0.95 minimising the pilot's estimate of within + final samples
        in split mode (0.5 with an oracle partition, which has no pilot, and in reuse mode,
        kept comparable with the oracle).
    base_params : extra parameters of the base (e.g. {"g": 2} for KT).
    max_pairwise, large_base, large_base_params : clusters above max_pairwise systems use
        large_base (default "kt") with these extra parameters (e.g. {"g": 500}).
    budget, final_fraction : fixed-budget variant (total samples N; final share).
    n_init, n_candidates : clustering restarts and greedy k-means++ candidates.
    head_start : (split fixed precision, KN inside clusters; default True) the within KN's
        running sums start from the pilot's sums and its stage counter at n_p + n0, so its
        first screening is at r = n_p + n0; S_il^2 and h^2 still come from the n0 fresh
        first-stage samples. The pilot is neither re-simulated nor counted again. Groups run
        by ``large_base`` (KT above ``max_pairwise``) or any other base ignore it, as do the
        final, DC (no pilot), reuse mode and an oracle partition. False: the fresh start.
    kn_c : Kim & Nelson's boundary parameter c of the within-cluster and the final KN. "auto"
        (default): chosen from (1, 2), separately for the within stage and the final, jointly
        with alpha_split and the first stages, minimising the pilot's estimate of the rest
        (split fixed precision; c = 1 with an oracle partition or in reuse mode). c = 2 narrows
        the continuation region at its start and halves its slope (h^2 from Fabian's bound for
        c; the region closes at h^2(c) S^2 / delta^2, later than c = 1's), so a clear leader
        eliminates sooner and near-ties last longer: it pays where the sequential stage is long
        (rho 0.9 clusters at delta 0.1: 7-10 % fewer samples, issue 16) and costs a few % near
        the first-stage floor, which the cost model's eligibility rule keeps it from (see
        ``_kn_per_system``). An integer: that c.

    Guarantee of the adaptive choices (split mode). Let D = (n_p, partition, refinement,
    alpha_split, n0_within, n0_final, c_within, c_final): every entry is a function of pilot replications
    0..n_p-1 only, and {n_p = n} is decided by replications 0..n-1 (a stopping time in the
    replication index). The within stage draws replications >= n_p, which are independent
    of D (replication vectors are i.i.d. across the index); given D, KN in the best's
    group is Kim & Nelson's (2001) procedure with fixed constants (alpha_w, n0_within, c_within) on
    data independent of how the group was formed, so it eliminates the best with
    probability <= alpha_w whatever the partition. The final draws replications >= R, the
    largest replication any system used; {R = r} is decided by data below r, so the final's
    data are independent of which systems won, and KN at (alpha - alpha_w, n0_final, c_final) errs
    with probability <= alpha - alpha_w given the best reached it. Hence
    P(ICS | D) <= alpha for every pilot outcome and P(ICS) <= alpha however wrong the
    clustering is (Zhang & Peng, arXiv 2402.02196, for the pipeline; the split and the
    pilot-only choices are ours). Clustering errors and a poor choice of D cost samples only.

    Guarantee with the head start (needs what KN needs: the replication vectors
    (X_1j, ..., X_kj) i.i.d. multivariate normal across j, CRN). Every entry of D reads the
    pilot only through its residuals R = (X_j - Xbar)_{j < n_p}: the clustering, the ARI of
    the stability rule, the cap, refinement, alpha_split, n0s and cs use standardized rows and
    variances (``standardize`` centres each system's row; ``_expected_cost`` reads xs and
    the variances), and the residuals of a sub-pilot 0..n-1 are functions of R, since
    Xbar_n - Xbar = mean_{j<n} (X_j - Xbar). So {n_p = N, D = d} is an event in the
    residuals R_N of rows 0..N-1, and for normal i.i.d. rows Xbar_N is independent of R_N:
    given D, the pilot sum of each pair difference X_l - X_i is N(N (mu_l - mu_i),
    N sigma_il^2), independent of D and of the fresh replications >= N. KN's S_il^2 comes
    from the n0 fresh first-stage samples only (chi^2 with n0 - 1 df, independent of the
    fresh first-stage sum), so given (D, S_il^2) the running sums at r = N + n0, N + n0 + 1,
    ... are a Brownian motion with drift observed at integer times. Kim & Nelson's (2001)
    bound for the triangular continuation region (Fabian's, for every c) holds whatever the
    set of observation times (the Jennison-Johnstone-Turnbull lemma they use), so each pair's wrong
    elimination has probability <= alpha_w / (size - 1) with h^2 from (n0, c) as before, and the
    argument above goes through with r counting pilot + fresh samples.
    """

    name = "p3c"
    _parameter_constraints = {**_Pipeline._parameter_constraints,
                              "pilot": optional([*ints(3), Options(("adaptive",))]),
                              "alpha_split": [*PROBABILITY_OPEN, Options(("auto",))],
                              "pilot_cap": [Interval(float, 0.0, 1.0, closed="right")],
                              "stable_ari": [Interval(float, 0.0, 1.0, closed="right")],
                              "pilot_max": ints(3), "refine": [Boolean()],
                              "refine_ratio": [Interval(float, 0.0, 1.0, closed="neither")],
                              "n_clusters": ints(1), "pilot_mode": [Options(("split", "reuse"))],
                              "partition": optional([Sequence_(Interval(int, 0, None), what="a list of "
                                                               "k cluster labels (integers >= 0)")]),
                              "n_init": ints(1), "n_candidates": optional(ints(1)), "n0_auto": [Boolean()],
                              "head_start": [Boolean()],
                              "kn_c": [*ints(1), Options(("auto",))]}

    def __init__(self, base: str | None = None, alpha: float = 0.05, delta: float = 0.1, n0: int = 20,
                 pilot: int | str | None = None, n_clusters: int = 16, pilot_mode: str = "split",
                 partition: Any = None, final: str | None = None, alpha_split: float | str = "auto",
                 base_params: dict | None = None, max_pairwise: int = 4096, large_base: str | None = "kt",
                 large_base_params: dict | None = None, budget: int | None = None,
                 final_fraction: float = 0.1, n_init: int = 3,
                 n_candidates: int | None = None, pilot_cap: float = 0.25, stable_ari: float = 0.95,
                 pilot_max: int = 40, refine: bool = False, refine_ratio: float = 0.5,
                 n0_auto: bool = True, head_start: bool = True, kn_c: int | str = "auto"):
        self.base = base if base is not None else ("kn" if budget is None else "greedy")
        self.alpha = alpha
        self.delta = delta
        self.n0 = n0
        self.pilot = pilot
        self.n_clusters = n_clusters
        self.pilot_mode = pilot_mode
        self.partition = partition
        self.final = final
        self.alpha_split = alpha_split
        self.base_params = base_params
        self.max_pairwise = max_pairwise
        self.large_base = large_base
        self.large_base_params = large_base_params
        self.budget = budget
        self.final_fraction = final_fraction
        self.n_init = n_init
        self.n_candidates = n_candidates
        self.pilot_cap = pilot_cap
        self.stable_ari = stable_ari
        self.pilot_max = pilot_max
        self.refine = refine
        self.refine_ratio = refine_ratio
        self.n0_auto = n0_auto
        self.head_start = head_start
        self.kn_c = kn_c
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        self._check_alpha_split()
        if self.pilot_mode not in ("split", "reuse"):
            raise ParameterError(f"pilot_mode must be 'split' (guaranteed) or 'reuse' (not guaranteed), "
                                 f"got {self.pilot_mode!r}")
        self._validate_common()
        check_int("n_clusters", self.n_clusters, low=1)
        check_int("n_init", self.n_init, low=1)
        check_int("pilot_max", self.pilot_max, low=3)
        if self.n_candidates is not None:
            check_int("n_candidates", self.n_candidates, low=1)
        if isinstance(self.alpha_split, str) and self.alpha_split != "auto":
            raise ParameterError(f"alpha_split must be in (0, 1) or 'auto', got {self.alpha_split!r}")
        if "c" in (self.base_params or {}):
            raise ParameterError("set KN's boundary parameter c through kn_c, not base_params")
        if self.pilot == "adaptive":
            if self.pilot_mode == "reuse" or self.budget is not None:
                raise ParameterError("pilot='adaptive' needs pilot_mode='split' and no budget (the pilot "
                                     "is n0 otherwise); leave pilot=None")
        elif self.pilot is not None:
            check_int("pilot", self.pilot, low=3)
            if (self.pilot_mode == "reuse" or self.budget is not None) and self.pilot != self.n0:
                raise ParameterError(f"pilot={self.pilot} must equal n0={self.n0} when the pilot is reused "
                                     f"(pilot_mode='reuse' or a budget); leave pilot=None")
        elif (self.pilot_mode == "reuse" or self.budget is not None) and self.n0 < 3:
            raise ParameterError(f"n0={self.n0} is the pilot here and must be >= 3 to estimate correlations")
        if self.partition is not None:
            lab = np.asarray(self.partition)
            if lab.ndim != 1 or lab.size < 1 or not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0:
                raise ParameterError("partition must be a 1-D list of non-negative integer cluster labels")
        super()._validate_params()

    def check_problem(self, problem) -> None:
        super().check_problem(problem)
        if self.partition is not None and len(self.partition) != problem.k:
            raise ParameterError(f"partition has {len(self.partition)} labels for k={problem.k} systems")

    def _split_pilot(self) -> bool:
        """A split pilot drawn for the fixed-precision pipeline (no budget, no oracle partition)."""
        return self.pilot_mode == "split" and self.budget is None and self.partition is None

    def _adaptive(self) -> bool:
        return self._split_pilot() and self.pilot in (None, "adaptive")

    def _n_pilot(self) -> int:
        """The (first) pilot size."""
        if self.partition is not None:
            return 0
        if self.pilot_mode == "reuse" or self.budget is not None:
            return int(self.n0)
        return int(self.pilot) if isinstance(self.pilot, int) else max(3, int(self.n0) // 2)

    def _head_n(self, pilot_n: int) -> int:
        """The within KN's head start: the split pilot's n_p samples (0 when off or no pilot)."""
        return int(pilot_n) if (self.head_start and self._split_pilot() and self.base == "kn") else 0

    def _replay(self) -> int:
        if self.partition is not None:
            return 0
        return self._n_pilot() if (self.pilot_mode == "reuse" or self.budget is not None) else 0

    def _cluster(self, pilot: np.ndarray, m: int, seed: tuple):
        xs = standardize(pilot)
        res = spherical_kmeans(xs, m, seed=(*seed, 0x703363), n_init=self.n_init,
                               n_candidates=self.n_candidates, standardized=True)
        return xs, res

    def _n0s(self) -> tuple:
        """First-stage sizes searched by n0_auto (split fixed precision only; n0 otherwise)."""
        if not (self.n0_auto and self.pilot_mode == "split" and self.budget is None):
            return (int(self.n0),)
        return tuple(sorted({int(round(f * self.n0)) for f in _N0_FACTORS}))

    def _cs(self) -> tuple:
        """KN boundary parameters searched (kn_c='auto': 1, 2 in split fixed precision; 1 with an
        oracle partition, which has no pilot to choose from)."""
        if not isinstance(self.kn_c, str):
            return (int(self.kn_c),)
        return _C_GRID if self._split_pilot() else (1,)

    def _splits(self) -> tuple:
        if not isinstance(self.alpha_split, str):
            return (float(self.alpha_split),)
        return _SPLIT_GRID if self.pilot_mode == "split" else (0.5,)

    def _partition(self, ctx):
        if self.partition is not None:
            lab = np.unique(np.asarray(self.partition, dtype=np.int64), return_inverse=True)[1]
            return lab.astype(np.int64), int(lab.max()) + 1, {"oracle": True}
        n_p = self._n_pilot()
        k = ctx.k
        allk = np.arange(k)
        pilot = ctx.draw(allk, n_p)                    # CRN: replications 0..n_p-1 of every system
        m = min(int(self.n_clusters), k)
        seed = ctx.streams.seed
        seed = tuple(seed) if isinstance(seed, tuple) else (seed,)
        xs, res = self._cluster(pilot, m, seed)
        history = [[n_p, None]]
        if self._adaptive():
            # grow n -> 2n while the partition moves and the pilot stays within its cap (the
            # estimate of the rest as without the head start: the pilot it returns is not charged)
            while 2 * n_p <= int(self.pilot_max):
                est = _expected_cost(self, xs, pilot.var(axis=1, ddof=1), res.labels, m, self._splits(),
                                     self._n0s())[0]
                if k * 2 * n_p > float(self.pilot_cap) * est:
                    break
                pilot = np.hstack([pilot, ctx.draw(allk, n_p)])   # replications n_p..2n_p-1
                xs2, res2 = self._cluster(pilot, m, seed)
                ari = adjusted_rand_index(res.labels, res2.labels)
                n_p, xs, res = 2 * n_p, xs2, res2
                history.append([n_p, round(float(ari), 4)])
                if ari >= float(self.stable_ari):
                    break
        svar = pilot.var(axis=1, ddof=1)
        del pilot
        labels = res.labels.astype(np.int64)
        refined = 0
        if self.refine and self.budget is None and m > 1:
            rho_c = np.nan_to_num(mean_within_correlation(xs, labels, m))
            mc = mate_correlation(xs, labels, m)
            move = np.isfinite(mc) & (rho_c[labels] > 0) & (mc < float(self.refine_ratio) * rho_c[labels])
            refined = int(move.sum())
            if refined:
                labels = labels.copy()
                labels[move] = m                       # one residual group
                m += 1
        est, split, cost, n0_w, n0_f, c_w, c_f = _expected_cost(self, xs, svar, labels, m, self._splits(),
                                                                self._n0s(), self._head_n(n_p), self._cs())
        sizes = np.bincount(labels, minlength=m)
        ctx.log("cluster", pilot=n_p, clusters=m, objective=res.objective, refined=refined,
                alpha_split=split, n0_within=n0_w, n0_final=n0_f, c_within=c_w, c_final=c_f,
                expected=round(est), sizes=sizes.tolist(),
                mean_within_corr=np.nan_to_num(mean_within_correlation(xs, labels, m)).round(4).tolist())
        info = {"objective": res.objective, "cost": cost, "pilot_history": history, "refined": refined}
        if self.budget is None:
            info["alpha_w"] = float(self.alpha) * split
            info.update(n0_w=int(n0_w), n0_f=int(n0_f), c_w=int(c_w), c_f=int(c_f))
        return labels, m, info


class DivideAndConquer(_Pipeline):
    """Divide and conquer: a seeded random (or round-robin) partition into n_groups, the base
    procedure in every group, a final stage among group winners (same error split as P3C:
    PCS >= 1-alpha under the IZ with a fixed-precision base)."""

    name = "dc"
    assumptions = "normal outputs; independent systems or CRN (crn parameter; the base must allow CRN)"
    guarantee = ("PCS >= 1-alpha under the IZ with a fixed-precision base (alpha_split*alpha inside the "
                 "best's group + the rest in a fresh final stage); none with a budget")
    _parameter_constraints = {**_Pipeline._parameter_constraints, "n_groups": ints(1),
                              "partition": [Options(("random", "round_robin"))], "crn": CRN}

    def __init__(self, base: str | None = None, alpha: float = 0.05, delta: float = 0.1, n0: int = 20,
                 n_groups: int = 16, partition: str = "random", final: str | None = None,
                 alpha_split: float = 0.5, base_params: dict | None = None, max_pairwise: int = 4096,
                 large_base: str | None = "kt", large_base_params: dict | None = None,
                 budget: int | None = None, final_fraction: float = 0.1, crn: bool = True):
        self.base = base if base is not None else ("kn" if budget is None else "greedy")
        self.alpha = alpha
        self.delta = delta
        self.n0 = n0
        self.n_groups = n_groups
        self.partition = partition
        self.final = final
        self.alpha_split = alpha_split
        self.base_params = base_params
        self.max_pairwise = max_pairwise
        self.large_base = large_base
        self.large_base_params = large_base_params
        self.budget = budget
        self.final_fraction = final_fraction
        self.crn = crn
        self._validate_params()

    @property
    def _crn(self) -> bool:
        return bool(self.crn)

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        self._check_alpha_split()
        check_int("n_groups", self.n_groups, low=1)
        if self.partition not in ("random", "round_robin"):
            raise ParameterError(f"partition must be 'random' or 'round_robin', got {self.partition!r}")
        if not isinstance(self.crn, (bool, np.bool_)):
            raise ParameterError(f"crn must be True or False, got {self.crn!r}")
        self._validate_common()
        super()._validate_params()

    def _partition(self, ctx):
        k = ctx.k
        m = min(int(self.n_groups), k)
        if self.partition == "round_robin":
            return np.arange(k, dtype=np.int64) % m, m, {}
        seed = ctx.streams.seed
        seed = tuple(seed) if isinstance(seed, tuple) else (seed,)
        perm = np.random.default_rng(np.random.SeedSequence((*seed, 0x6463))).permutation(k)
        labels = np.empty(k, dtype=np.int64)
        labels[perm] = np.arange(k) % m
        return labels, m, {}
