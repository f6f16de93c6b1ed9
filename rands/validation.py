"""Validation harness: PCS, PGS and sample sizes by macroreplication.

Macroreplication m of seed s runs with seed (s, m), so the runs are
independent and any one of them can be rerun alone. Intervals are Wilson 95%.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

from .errors import ParameterError, check_int
from .selection import resolve_problem, resolve_procedure, select


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if trials <= 0:
        return (0.0, 1.0)
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / trials
    den = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / den
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / den
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


@dataclass
class ValidationResult:
    """PCS/PGS estimates over macroreplications (Wilson 95% intervals)."""

    procedure: str
    params: dict[str, Any]
    problem: dict[str, Any]
    macroreps: int
    pcs: float
    pcs_ci: tuple[float, float]
    pgs: float
    pgs_ci: tuple[float, float]
    mean_samples: float
    sd_samples: float
    mean_wall_time: float
    delta: float
    selected: np.ndarray = field(repr=False)
    samples: np.ndarray = field(repr=False)
    correct: np.ndarray | None = field(default=None, repr=False)   # per macroreplication
    good: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        per_rep = {"selected": np.asarray(self.selected).tolist(),
                   "samples": np.asarray(self.samples).tolist()}
        for name in ("correct", "good"):
            if getattr(self, name) is not None:
                per_rep[name] = np.asarray(getattr(self, name), dtype=bool).tolist()
        return {"procedure": self.procedure, "params": self.params, "problem": self.problem,
                "macroreps": self.macroreps, "pcs": self.pcs, "pcs_ci": list(self.pcs_ci),
                "pgs": self.pgs, "pgs_ci": list(self.pgs_ci), "mean_samples": self.mean_samples,
                "sd_samples": self.sd_samples, "mean_wall_time": self.mean_wall_time,
                "delta": self.delta, **per_rep}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ValidationResult":
        """Inverse of :meth:`to_dict` (per-macroreplication arrays when recorded)."""
        def arr(name, dtype):
            return None if d.get(name) is None else np.asarray(d[name], dtype=dtype)
        return cls(procedure=d["procedure"], params=d.get("params", {}), problem=d.get("problem", {}),
                   macroreps=int(d["macroreps"]), pcs=float(d["pcs"]), pcs_ci=tuple(d["pcs_ci"]),
                   pgs=float(d["pgs"]), pgs_ci=tuple(d["pgs_ci"]), mean_samples=float(d["mean_samples"]),
                   sd_samples=float(d["sd_samples"]), mean_wall_time=float(d["mean_wall_time"]),
                   delta=float(d["delta"]), selected=arr("selected", np.int64),
                   samples=arr("samples", np.int64), correct=arr("correct", bool), good=arr("good", bool))

    def to_frame(self, summary: bool = False):
        """A pandas DataFrame: one row per macroreplication (``selected, samples, correct,
        good``), or with ``summary=True`` one row of estimates (procedure, PCS, PGS and their
        Wilson intervals, samples) that concatenates across procedures. Needs pandas."""
        from .results import _pandas
        pd = _pandas()
        if summary:
            return pd.DataFrame([{
                "procedure": self.procedure, "macroreps": self.macroreps, "pcs": self.pcs,
                "pcs_low": self.pcs_ci[0], "pcs_high": self.pcs_ci[1], "pgs": self.pgs,
                "pgs_low": self.pgs_ci[0], "pgs_high": self.pgs_ci[1],
                "mean_samples": self.mean_samples, "sd_samples": self.sd_samples,
                "mean_wall_time": self.mean_wall_time, **{f"param_{k}": v for k, v in self.params.items()
                                                          if np.ndim(v) == 0}}])
        cols = {"selected": np.asarray(self.selected), "samples": np.asarray(self.samples)}
        for name in ("correct", "good"):
            if getattr(self, name) is not None:
                cols[name] = np.asarray(getattr(self, name), dtype=bool)
        frame = pd.DataFrame(cols)
        frame.index.name = "macrorep"
        return frame

    def row(self) -> str:
        return (f"{self.procedure:8s} PCS {self.pcs:.3f} [{self.pcs_ci[0]:.3f}, {self.pcs_ci[1]:.3f}]  "
                f"PGS {self.pgs:.3f}  samples {self.mean_samples:.1f} +- {self.sd_samples:.1f}")


def validate(problem, procedure, *, macroreps: int, seed, problem_params: dict | None = None,
             pgs_delta: float | None = None, executor=None, **params) -> ValidationResult:
    """Run ``procedure`` on a known-truth ``problem`` ``macroreps`` times.

    PCS: the selected system has the largest true mean. PGS: its true mean is
    strictly within ``pgs_delta`` of the largest (mu_i > mu_max - pgs_delta; strict
    so that PGS is not trivially 1 in the slippage configuration); ``pgs_delta``
    defaults to the procedure's delta, else the problem's. ``**params`` go to the
    procedure (``delta`` included). Returns a :class:`ValidationResult`.
    """
    macroreps = check_int("macroreps", macroreps, low=1)
    prob = resolve_problem(problem, problem_params)
    proc = resolve_procedure(procedure, params)
    if prob.true_means is None:
        raise ParameterError(f"problem {prob.name!r} has no true_means; validation needs known truth")
    mu = np.asarray(prob.true_means)
    delta = pgs_delta
    if delta is None:
        delta = getattr(proc, "delta", None) or getattr(prob, "delta", None)
    if delta is None:
        raise ParameterError("the PGS indifference zone is unknown: pass pgs_delta=...")
    best_true = np.flatnonzero(mu == mu.max())
    good = mu > mu.max() - float(delta) * (1 - 1e-9)
    base = seed if isinstance(seed, (tuple, list)) else (seed,)
    selected = np.empty(macroreps, dtype=np.int64)
    samples = np.empty(macroreps, dtype=np.int64)
    wall = 0.0
    for m in range(macroreps):
        r = select(prob, proc, seed=(*base, m), executor=executor)
        selected[m] = r.best
        samples[m] = r.total_samples
        wall += r.wall_time
    correct = int(np.isin(selected, best_true).sum())
    good_sel = int(good[selected].sum())
    return ValidationResult(
        procedure=proc.name, params=proc.get_params(), problem=prob.spec() if prob.k <= 100 else
        {"name": prob.name, "k": prob.k}, macroreps=macroreps, pcs=correct / macroreps,
        pcs_ci=wilson_interval(correct, macroreps), pgs=good_sel / macroreps,
        pgs_ci=wilson_interval(good_sel, macroreps), mean_samples=float(samples.mean()),
        sd_samples=float(samples.std(ddof=1)) if macroreps > 1 else 0.0,
        mean_wall_time=wall / macroreps, delta=float(delta), selected=selected, samples=samples,
        correct=np.isin(selected, best_true), good=good[selected])
