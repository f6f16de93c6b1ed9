"""Advantage estimators behind one interface: GRPO, Dr.GRPO, RS-GRPO, NSR, RiskPO.

Every estimator is called as ``est(rewards, question_ids, bundle_ids=None)`` on a flat
batch of responses (G per question, the j-th response of a question is its j-th
occurrence in batch order) and returns an :class:`AdvantageResult` with one scalar
advantage per response (broadcast over its tokens by the surrogate) and diagnostics.
Estimators with state (RiskPO's quantile tracker) expose ``state_dict`` /
``load_state_dict`` (JSON-serialisable) for checkpoints; the others return {}.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ...errors import ParameterError
from .mvar import (QuantileTracker, RiskTerm, check_terms, empirical_mvar, levels_of, linear_quantiles,
                   mvar_weights, released_terms)

EPS = 1e-6


@dataclass
class AdvantageResult:
    advantages: torch.Tensor  # (n,) float64, one per response
    info: dict[str, float] = field(default_factory=dict)


def group_matrix(question_ids) -> tuple[np.ndarray, np.ndarray]:
    """(unique ids (Q,), index matrix (Q, G)): idx[q, j] is the batch position of the j-th response of q.

    Raises ParameterError unless every question has the same number G >= 2 of responses.
    """
    ids = np.asarray(question_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ParameterError(f"question_ids must be a non-empty 1-d array, got shape {ids.shape}")
    uniq, inv, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if counts.min() != counts.max():
        raise ParameterError(f"every question needs the same number of responses G; got counts from "
                             f"{counts.min()} to {counts.max()}")
    G = int(counts[0])
    if G < 2:
        raise ParameterError(f"group advantages need G >= 2 responses per question, got G = {G}")
    order = np.argsort(inv, kind="stable")
    return uniq, order.reshape(len(uniq), G)


def _as_rewards(rewards) -> torch.Tensor:
    r = torch.as_tensor(np.asarray(rewards, dtype=np.float64) if not torch.is_tensor(rewards) else rewards)
    r = r.to(torch.float64).reshape(-1)
    if not torch.isfinite(r).all():
        raise ParameterError("rewards must be finite")
    return r


def _scatter(values_qg: torch.Tensor, idx: np.ndarray, n: int) -> torch.Tensor:
    out = torch.empty(n, dtype=torch.float64)
    out[torch.as_tensor(idx.reshape(-1))] = values_qg.reshape(-1)
    return out


def _sign_info(a: torch.Tensor) -> dict[str, float]:
    return {"frac_pos": float((a > 1e-12).double().mean()), "frac_neg": float((a < -1e-12).double().mean()),
            "frac_zero": float((a.abs() <= 1e-12).double().mean())}


def _index_matrix(inv: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(Q', G) batch positions of the questions in ``rows`` (all of one group size G), in id order."""
    order = rows[np.argsort(inv[rows], kind="stable")]
    q = len(np.unique(inv[rows]))
    return order.reshape(q, len(rows) // q)


class AdvantageEstimator:
    """Base class: ``__call__(rewards, question_ids, bundle_ids=None, *, update=True) -> AdvantageResult``.

    ``update=False`` (evaluation batches) leaves any state (RiskPO's tracker) unchanged.
    Unequal group sizes (multi-turn rollouts, excluded unscorable responses): per-question
    estimators (``per_question = True``: GRPO, Dr.GRPO, RS-GRPO, NSR) compute each
    question's advantages from its own responses, exactly as with equal groups; a question
    with one response gets 0 (no group baseline). RiskPO couples questions through bundles
    and refuses unequal groups unless built with ``unequal_groups="truncate"``.
    """

    name = ""
    per_question = True

    def __call__(self, rewards, question_ids, bundle_ids=None, *, update: bool = True) -> AdvantageResult:
        r = _as_rewards(rewards)
        ids = np.asarray(question_ids)
        if len(ids) != r.numel():
            raise ParameterError(f"question_ids has length {len(ids)}, rewards {r.numel()}")
        if ids.ndim != 1 or ids.size == 0:
            raise ParameterError(f"question_ids must be a non-empty 1-d array, got shape {ids.shape}")
        self._update = bool(update)
        uniq, inv, counts = np.unique(ids, return_inverse=True, return_counts=True)
        if counts.min() == counts.max():
            uniq, idx = group_matrix(ids)
            adv = _scatter(self._compute(r[torch.as_tensor(idx)], uniq, bundle_ids, idx), idx, r.numel())
            return AdvantageResult(adv, {**self._info, **_sign_info(adv)})
        return self._unequal(r, uniq, inv, counts, bundle_ids)

    def _unequal(self, r, uniq, inv, counts, bundle_ids) -> AdvantageResult:
        adv = torch.zeros(r.numel(), dtype=torch.float64)
        info: dict[str, float] = {}
        for G in np.unique(counts):
            if G < 2:
                continue
            rows = np.flatnonzero(counts[inv] == G)
            idx = _index_matrix(inv, rows)
            adv[torch.as_tensor(idx.reshape(-1))] = self._compute(r[torch.as_tensor(idx)], uniq[inv[idx[:, 0]]],
                                                                  bundle_ids, idx).reshape(-1)
            info.update(self._info)
        info["frac_singleton_questions"] = float((counts == 1).mean())
        return AdvantageResult(adv, {**info, **_sign_info(adv)})

    _info: dict = {}
    _update: bool = True

    def _compute(self, r: torch.Tensor, uniq: np.ndarray, bundle_ids, idx: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


def grpo_advantages(r: torch.Tensor, norm_by_std: bool = True) -> torch.Tensor:
    """GRPO on a (Q, G) reward matrix: (r - mean_q) / (std_q + 1e-6), std with n-1 (torch default)."""
    a = r - r.mean(1, keepdim=True)
    return a / (r.std(1, keepdim=True) + EPS) if norm_by_std else a


class GRPO(AdvantageEstimator):
    """GRPO (Shao et al., arXiv 2402.03300): group z-score. ``norm_by_std=False`` is Dr.GRPO."""

    name = "grpo"

    def __init__(self, norm_by_std: bool = True):
        self.norm_by_std = bool(norm_by_std)
        self._info = {}

    def _compute(self, r, uniq, bundle_ids, idx):
        return grpo_advantages(r, self.norm_by_std)


class DrGRPO(GRPO):
    """Dr.GRPO (Liu et al., arXiv 2503.20783): r - mean_q, no std division (pair with a
    constant-length token-sum loss normaliser)."""

    name = "drgrpo"

    def __init__(self):
        super().__init__(norm_by_std=False)


class RSGRPO(AdvantageEstimator):
    """Risk-seeking GRPO (arXiv 2509.24261): A_i = (1/beta)(exp(beta r_i) / mean_j exp(beta r_j) - 1).

    Gradient of (1/beta) log E exp(beta r) per question; beta -> 0 gives r - mean. 0 on uniform groups.
    """

    name = "rsgrpo"

    def __init__(self, beta: float = 2.0):
        if not (beta > 0 and math.isfinite(beta)):
            raise ParameterError(f"beta must be > 0, got {beta}")
        self.beta = float(beta)
        self._info = {}

    def _compute(self, r, uniq, bundle_ids, idx):
        e = torch.exp(self.beta * (r - r.max(1, keepdim=True).values))
        return (e / e.mean(1, keepdim=True) - 1.0) / self.beta


class NSR(AdvantageEstimator):
    """Negative-sample reinforcement controls (cf. arXiv 2506.01347).

    ``base="grpo"``: GRPO advantages, plus -c on every response of an all-fail group
    (max reward <= ``fail_at``), which GRPO leaves at 0 (reference note section 13).
    ``base="none"``: only negatives, -c on every failed response, 0 otherwise.
    """

    name = "nsr"

    def __init__(self, c: float = 0.5, base: str = "grpo", fail_at: float = 0.0):
        if not (c > 0 and math.isfinite(c)):
            raise ParameterError(f"c must be > 0, got {c}")
        if base not in ("grpo", "none"):
            raise ParameterError(f"base must be 'grpo' or 'none', got {base!r}")
        self.c, self.base, self.fail_at = float(c), base, float(fail_at)
        self._info = {}

    def _compute(self, r, uniq, bundle_ids, idx):
        fail = r <= self.fail_at
        if self.base == "none":
            return torch.where(fail, -self.c, 0.0).to(torch.float64)
        allfail = fail.all(1, keepdim=True).expand_as(r)
        return torch.where(allfail, torch.full_like(r, -self.c), grpo_advantages(r))


_M = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z.astype(np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def stable_bundles(question_ids: np.ndarray, bundle_size: int, seed: int = 0) -> np.ndarray:
    """Bundle index per unique question id: ids ordered by a hash of (id, seed), chunked by B.

    Depends only on the set of ids and ``seed``, never on batch order. Integer ids only
    (map strings to ints first, e.g. ranks of sorted uuids as the verl adapter does).
    """
    ids = np.asarray(question_ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ParameterError(f"question ids must be integers for stable bundling, got dtype {ids.dtype}")
    with np.errstate(over="ignore"):
        h = _mix(_mix(ids.astype(np.int64).view(np.uint64)) ^ _mix(np.full(ids.shape, seed + 1, dtype=np.uint64)))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(h, kind="stable")] = np.arange(len(ids))
    return rank // bundle_size


QUANTILE_MODES = ("bundle", "batch", "tracked")
CREDIT_MODES = ("uniform", "std", "sum-mean", "score")


class RiskPO(AdvantageEstimator):
    """RiskPO (arXiv 2510.00911; official code RTkenny/RiskPO) advantages.

    Questions are grouped into bundles of ``bundle_size`` B; the j-th responses of a
    bundle's questions form its j-th realisation with score X_j = sum of their rewards
    (a partial last bundle is rescaled by B / size). Weights g(X_j) are the MVaR
    score-function weights (:func:`mvar.mvar_weights`) with quantiles from
    ``quantiles``: "bundle" (linear-interpolated over the G scores of each bundle, the
    released behaviour), "batch" (all bundle scores of the batch) or "tracked" (a
    :class:`QuantileTracker` over bundle scores, warm-started on the first batch; the
    weights use the estimate before this batch's update). ``scale``: divide by the std
    of the bundle's G scores ("bundle_std", released), of all the batch's scores
    ("batch_std") or not ("none"); "auto" = bundle_std for bundle quantiles, batch_std
    otherwise. ``credit`` splits a bundle's advantage onto its questions' responses:
    "uniform", "std" (/ per-question reward std, 1 if <= 1e-3), "sum-mean" (share
    (r - mean_q) / sum_k (r_k - mean_k), equal split if that sum is ~0) or "score"
    (x0.5 correct, x1.5 incorrect; correct = reward > 0).

    What each quantile mode optimises (exact enumeration, :mod:`.bias`,
    ``tests/test_riskpo_bias.py``, ``studies/riskpo/bias_table.md``): weights at the TRUE
    quantiles give an unbiased MVaR gradient; sample quantiles from the same n scores do not.

    - "bundle" (released): n = G. Not the MVaR of the score distribution: its expected update is
      off the true MVaR gradient by 31% (G = 5), 35% (G = 8), 28% (16), 10% (64) in relative norm
      (cosine 0.985-0.998, norm 1.07-1.30x), and closer to the gradient of E[MVaR of a bundle's
      G-score empirical distribution] (23% at G = 5, 3% at G = 64): the mean of per-bundle MVaRs,
      a different, G-dependent objective.
    - "batch": pooled over all bundle scores of the batch (n = bundles x G): the MVaR of the whole
      score distribution, bias 10% at n = 64, 3.5% at n = 128, shrinking as the batch grows.
    - "tracked": the tracker's fixed point is the true quantiles, where the update is exactly
      unbiased for the MVaR of the whole distribution (decaying step sizes for convergence).
    Numbers are for a 4-outcome score distribution under the released terms; the bias is
    problem-dependent, its sign and size are not guaranteed elsewhere. ``unequal_groups``:
    "error" (default) or "truncate" (each question keeps its first min-G responses; the others
    get advantage 0).
    """

    name = "riskpo"
    per_question = False

    def __init__(self, alpha: float = 0.2, beta: float = 0.8, w: float = 1.5, bundle_size: int = 5,
                 quantiles: str = "bundle", natural_baseline: bool = True, credit: str = "std",
                 scale: str = "auto", tracker_lr: float = 0.1, tracker_decay: float = 0.0,
                 terms: Sequence[RiskTerm] | None = None, bundle_seed: int = 0,
                 allreduce: Callable | None = None, unequal_groups: str = "error"):
        if terms is None:
            if not (0 < alpha < beta <= 1):
                raise ParameterError(f"need 0 < alpha < beta <= 1, got alpha={alpha}, beta={beta}")
            if not (w >= 0 and math.isfinite(w)):
                raise ParameterError(f"w must be >= 0, got {w}")
            terms = released_terms(alpha, beta, w)
        self.terms = check_terms(terms)
        if isinstance(bundle_size, bool) or not isinstance(bundle_size, (int, np.integer)) or bundle_size < 1:
            raise ParameterError(f"bundle_size must be an integer >= 1, got {bundle_size!r}")
        if quantiles not in QUANTILE_MODES:
            raise ParameterError(f"quantiles must be one of {QUANTILE_MODES}, got {quantiles!r}")
        if credit not in CREDIT_MODES:
            raise ParameterError(f"credit must be one of {CREDIT_MODES}, got {credit!r}")
        if scale not in ("auto", "bundle_std", "batch_std", "none"):
            raise ParameterError(f"scale must be 'auto', 'bundle_std', 'batch_std' or 'none', got {scale!r}")
        if unequal_groups not in ("error", "truncate"):
            raise ParameterError(f"unequal_groups must be 'error' or 'truncate', got {unequal_groups!r}")
        self.unequal_groups = unequal_groups
        self.bundle_size = int(bundle_size)
        self.quantiles = quantiles
        self.natural_baseline = bool(natural_baseline)
        self.credit = credit
        self.scale = scale if scale != "auto" else ("bundle_std" if quantiles == "bundle" else "batch_std")
        self.bundle_seed = int(bundle_seed)
        self.allreduce = allreduce
        self.levels = levels_of(self.terms)
        self.tracker = QuantileTracker(lr=tracker_lr, decay=tracker_decay)
        self.tracker.add_levels(self.levels)
        self._info = {}

    # -------------------------------------------------------------- pieces
    def bundle_scores(self, r: torch.Tensor, bundle_of_q: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Scores (n_bundles, G) and the bundle index (0..n_bundles-1) of each question."""
        _, b = np.unique(bundle_of_q, return_inverse=True)
        nb = int(b.max()) + 1
        bt = torch.as_tensor(b)
        X = torch.zeros(nb, r.shape[1], dtype=torch.float64).index_add_(0, bt, r)
        size = torch.bincount(bt, minlength=nb).to(torch.float64)
        return X * (self.bundle_size / size)[:, None], b

    def bundle_advantages(self, X: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Per-realisation advantages (n_bundles, G) from bundle scores, before credit assignment."""
        if self.quantiles == "bundle":
            q = linear_quantiles(X, self.levels, dim=1)  # each (nb, 1)
        elif self.quantiles == "batch":
            q = {u: v.reshape(1, 1) for u, v in linear_quantiles(X.reshape(-1), self.levels, dim=0).items()}
        else:
            fresh = not self.tracker.initialized
            if fresh and not self._update:  # evaluation before any training batch: batch quantiles, no state
                q = {u: v.reshape(1, 1) for u, v in linear_quantiles(X.reshape(-1), self.levels, dim=0).items()}
            else:
                if fresh:
                    self.tracker.warm_start(X.reshape(-1))
                q = {u: torch.tensor([[self.tracker.quantile(u)]], dtype=torch.float64) for u in self.levels}
        g, parts = mvar_weights(X, q, self.terms, natural_baseline=self.natural_baseline)
        if self.quantiles == "tracked" and not fresh and self._update:
            self.tracker.update(X.reshape(-1), self.allreduce)
        if self.scale == "bundle_std":
            s = X.std(1, keepdim=True) if X.shape[1] > 1 else torch.ones(X.shape[0], 1, dtype=X.dtype)
        elif self.scale == "batch_std":
            s = X.reshape(-1).std().reshape(1, 1)
        else:
            s = torch.ones(1, 1, dtype=X.dtype)
        s = torch.where(s > EPS, s, torch.ones_like(s))
        info = {f"q_{u:g}": float(q[u].mean()) for u in self.levels}
        info["mvar"] = float(empirical_mvar(X.reshape(-1), self.terms))
        info["bundle_score_mean"] = float(X.mean())
        for k, v in parts.items():
            info[k + "_weight_mean"] = float(v.mean())
        return g / s, info

    def _credit(self, A_q: torch.Tensor, r: torch.Tensor, b: np.ndarray) -> torch.Tensor:
        if self.credit == "uniform":
            return A_q
        if self.credit == "std":
            s = r.std(1, keepdim=True) if r.shape[1] > 1 else torch.ones_like(r[:, :1])
            return A_q / torch.where(s > 1e-3, s, torch.ones_like(s))
        if self.credit == "score":
            return A_q * torch.where(r > 0, 0.5, 1.5).to(torch.float64)
        dev = r - r.mean(1, keepdim=True)  # sum-mean
        bt = torch.as_tensor(b)
        nb = int(b.max()) + 1
        den = torch.zeros(nb, r.shape[1], dtype=torch.float64).index_add_(0, bt, dev)[bt]
        size = torch.bincount(bt, minlength=nb).to(torch.float64)[bt][:, None]
        share = torch.where(den.abs() > EPS, dev / torch.where(den.abs() > EPS, den, torch.ones_like(den)),
                            1.0 / size)
        return A_q * share

    def _compute(self, r, uniq, bundle_ids, idx):
        if bundle_ids is None:
            bundle_of_q = stable_bundles(uniq, self.bundle_size, self.bundle_seed)
        else:
            bid = np.asarray(bundle_ids)
            if bid.shape != (idx.size,):
                raise ParameterError(f"bundle_ids must have one entry per response ({idx.size}), got {bid.shape}")
            bundle_of_q = bid[idx[:, 0]]
            if not np.all(bid[idx] == bundle_of_q[:, None]):
                raise ParameterError("bundle_ids must be constant over the responses of a question")
        X, b = self.bundle_scores(r, bundle_of_q)
        A_b, info = self.bundle_advantages(X)
        self._info = info
        return self._credit(A_b[torch.as_tensor(b)], r, b)

    def _unequal(self, r, uniq, inv, counts, bundle_ids) -> AdvantageResult:
        if self.unequal_groups == "error":
            raise ParameterError(
                f"RiskPO needs the same number of responses per question (bundle realisations pair the j-th "
                f"responses); got {counts.min()} to {counts.max()}. Build RiskPO(unequal_groups='truncate') to keep "
                f"the first min-G responses of each question (the rest get advantage 0), or use a per-question "
                f"estimator (grpo, drgrpo, rsgrpo, nsr)")
        ok = counts >= 2
        if not ok.any():
            raise ParameterError("RiskPO needs at least one question with >= 2 responses")
        gmin = int(counts[ok].min())
        order = np.argsort(inv, kind="stable")  # rank of each response within its question, batch order
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(len(inv), dtype=np.int64)
        rank[order] = np.arange(len(inv)) - start[inv[order]]
        keep = np.flatnonzero(ok[inv] & (rank < gmin))
        sub = self(r[torch.as_tensor(keep)], uniq[inv[keep]],
                   None if bundle_ids is None else np.asarray(bundle_ids)[keep], update=self._update)
        adv = torch.zeros(r.numel(), dtype=torch.float64)
        adv[torch.as_tensor(keep)] = sub.advantages
        return AdvantageResult(adv, {**sub.info, "frac_truncated": 1.0 - len(keep) / len(inv),
                                     **_sign_info(adv)})

    def state_dict(self) -> dict:
        return {"tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.tracker.load_state_dict(state["tracker"])


_ESTIMATORS: dict[str, type[AdvantageEstimator]] = {
    "grpo": GRPO, "drgrpo": DrGRPO, "rsgrpo": RSGRPO, "nsr": NSR, "riskpo": RiskPO,
}


def make_estimator(name: str, **params: Any) -> AdvantageEstimator:
    """Build an estimator by name: grpo, drgrpo, rsgrpo, nsr, riskpo."""
    if name not in _ESTIMATORS:
        raise ParameterError(f"unknown advantage estimator {name!r}; valid: {sorted(_ESTIMATORS)}")
    try:
        return _ESTIMATORS[name](**params)
    except TypeError as exc:
        raise ParameterError(f"bad parameters for estimator {name!r}: {exc}") from None
