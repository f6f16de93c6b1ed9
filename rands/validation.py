"""Validation harness: PCS, PGS and sample sizes by macroreplication.

Macroreplication m of seed s runs with seed (s, m), so the runs are
independent and any one of them can be rerun alone. Intervals are Wilson 95%.
A validation can be split into N shards (``validate_shard``: shard I runs
macroreplications I, I+N, ...; one Slurm array task each) written as JSON and
joined by ``merge_shards`` into the same result as the unsharded run, bit for bit.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
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


def _setup(problem, procedure, macroreps, seed, problem_params, pgs_delta, params):
    """Resolve and check everything a validation needs before its first sample."""
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
    base = tuple(seed) if isinstance(seed, (tuple, list)) else (seed,)
    return macroreps, prob, proc, mu, float(delta), base


def _run_macroreps(prob, proc, mu, delta, base, indices, executor) -> dict[str, np.ndarray]:
    """Macroreplications ``indices``: m runs with seed (*base, m), whatever else runs."""
    best_true = np.flatnonzero(mu == mu.max())
    good = mu > mu.max() - delta * (1 - 1e-9)
    n = len(indices)
    out = {"index": np.asarray(indices, dtype=np.int64), "selected": np.empty(n, dtype=np.int64),
           "samples": np.empty(n, dtype=np.int64), "wall_time": np.empty(n, dtype=np.float64)}
    for j, m in enumerate(indices):
        r = select(prob, proc, seed=(*base, int(m)), executor=executor)
        out["selected"][j] = r.best
        out["samples"][j] = r.total_samples
        out["wall_time"][j] = r.wall_time
    out["correct"] = np.isin(out["selected"], best_true)
    out["good"] = good[out["selected"]]
    return out


def _summarise(procedure: str, params: dict, problem: dict, delta: float,
               runs: dict[str, np.ndarray]) -> ValidationResult:
    """The ValidationResult of macroreplications 0..M-1 (``runs`` in index order)."""
    macroreps = len(runs["selected"])
    samples = runs["samples"]
    correct = int(np.count_nonzero(runs["correct"]))
    good_sel = int(np.count_nonzero(runs["good"]))
    wall = 0.0
    for w in runs["wall_time"]:
        wall += float(w)
    return ValidationResult(
        procedure=procedure, params=params, problem=problem, macroreps=macroreps,
        pcs=correct / macroreps, pcs_ci=wilson_interval(correct, macroreps), pgs=good_sel / macroreps,
        pgs_ci=wilson_interval(good_sel, macroreps), mean_samples=float(samples.mean()),
        sd_samples=float(samples.std(ddof=1)) if macroreps > 1 else 0.0,
        mean_wall_time=wall / macroreps, delta=float(delta), selected=runs["selected"], samples=samples,
        correct=np.asarray(runs["correct"], dtype=bool), good=np.asarray(runs["good"], dtype=bool))


def _problem_record(prob) -> dict:
    return prob.spec() if prob.k <= 100 else {"name": prob.name, "k": prob.k}


def validate(problem, procedure, *, macroreps: int, seed, problem_params: dict | None = None,
             pgs_delta: float | None = None, executor=None, **params) -> ValidationResult:
    """Run ``procedure`` on a known-truth ``problem`` ``macroreps`` times.

    PCS: the selected system has the largest true mean. PGS: its true mean is
    strictly within ``pgs_delta`` of the largest (mu_i > mu_max - pgs_delta; strict
    so that PGS is not trivially 1 in the slippage configuration); ``pgs_delta``
    defaults to the procedure's delta, else the problem's. ``**params`` go to the
    procedure (``delta`` included). Returns a :class:`ValidationResult`.
    """
    macroreps, prob, proc, mu, delta, base = _setup(problem, procedure, macroreps, seed,
                                                    problem_params, pgs_delta, params)
    runs = _run_macroreps(prob, proc, mu, delta, base, range(macroreps), executor)
    return _summarise(proc.name, proc.get_params(), _problem_record(prob), delta, runs)


# ---------------------------------------------------------------------------- shards

SHARD_FORMAT = "rands-validation-shard/1"


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0 <= I < N) as ``(I, N)``; ParameterError otherwise."""
    try:
        i_text, n_text = str(text).split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ParameterError(f"--shard must look like I/N with 0 <= I < N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ParameterError(f"--shard must look like I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return i, n


def shard_indices(total: int, shard: tuple[int, int]) -> range:
    """The items of shard (I, N) among ``total``: I, I+N, I+2N, ... (strided, so shards balance)."""
    i, n = shard
    return range(i, total, n)


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda v: v.item() if isinstance(v, np.generic) else
                                 v.tolist() if isinstance(v, np.ndarray) else str(v)))


@dataclass
class ValidationShard:
    """Macroreplications I, I+N, ... of one validation: a JSON file that ``merge_shards`` joins.

    ``run`` identifies the validation (problem, procedure, params, seed, macroreps, PGS
    delta, N); shards merge only when their ``run`` records are equal. Macroreplication m
    runs with seed (s, m) in every shard, so shards are independent of each other.
    """

    run: dict[str, Any]
    shard: tuple[int, int]
    runs: dict[str, np.ndarray] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"format": SHARD_FORMAT, "run": self.run, "shard": list(self.shard),
                "index": self.runs["index"].tolist(), "selected": self.runs["selected"].tolist(),
                "samples": self.runs["samples"].tolist(),
                "wall_time": [float(w).hex() for w in self.runs["wall_time"]],
                "correct": self.runs["correct"].astype(bool).tolist(),
                "good": self.runs["good"].astype(bool).tolist()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def write(self, path) -> None:
        """Write atomically (temporary file + rename) so a killed task leaves no half file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "shard") -> "ValidationShard":
        if not isinstance(d, dict) or d.get("format") != SHARD_FORMAT:
            raise ParameterError(f"{where} is not a validation shard (format {SHARD_FORMAT!r})")
        try:
            runs = {"index": np.asarray(d["index"], dtype=np.int64),
                    "selected": np.asarray(d["selected"], dtype=np.int64),
                    "samples": np.asarray(d["samples"], dtype=np.int64),
                    "wall_time": np.array([float.fromhex(w) for w in d["wall_time"]], dtype=np.float64),
                    "correct": np.asarray(d["correct"], dtype=bool), "good": np.asarray(d["good"], dtype=bool)}
            shard = (int(d["shard"][0]), int(d["shard"][1]))
            run = dict(d["run"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ParameterError(f"{where} is damaged: {exc!r}") from None
        if len({len(v) for v in runs.values()}) != 1:
            raise ParameterError(f"{where} is damaged: its per-macroreplication lists differ in length")
        return cls(run=run, shard=shard, runs=runs)

    @classmethod
    def read(cls, path) -> "ValidationShard":
        p = Path(path)
        if not p.is_file():
            raise ParameterError(f"shard file {str(p)!r} does not exist")
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ParameterError(f"shard file {str(p)!r} is not valid JSON: {exc}") from None
        return cls.from_dict(d, where=f"shard file {str(p)!r}")


def validate_shard(problem, procedure, *, macroreps: int, seed, shard: tuple[int, int] | str,
                   problem_params: dict | None = None, pgs_delta: float | None = None, executor=None,
                   **params) -> ValidationShard:
    """Shard ``shard`` = (I, N) of :func:`validate`: macroreplications m = I, I+N, ...

    Each runs with seed (s, m), exactly as in the unsharded validation, so
    ``merge_shards`` of all N shards equals ``validate(...)`` bit for bit (PCS, PGS,
    intervals, sample sizes; wall times are measured, so they differ).
    """
    if isinstance(shard, str):
        shard = parse_shard(shard)
    i, n = (int(shard[0]), int(shard[1]))
    if n < 1 or not 0 <= i < n:
        raise ParameterError(f"shard must be (I, N) with 0 <= I < N, got {shard!r}")
    macroreps, prob, proc, mu, delta, base = _setup(problem, procedure, macroreps, seed,
                                                    problem_params, pgs_delta, params)
    run = _jsonable({"procedure": proc.name, "params": proc.get_params(), "problem": _problem_record(prob),
                     "seed": list(base), "macroreps": macroreps, "delta": delta, "shards": n})
    runs = _run_macroreps(prob, proc, mu, delta, base, shard_indices(macroreps, (i, n)), executor)
    return ValidationShard(run=run, shard=(i, n), runs=runs)


def merge_shards(shards) -> ValidationResult:
    """Join the N shards of one validation (objects or paths) into its ValidationResult.

    Refuses shards of different validations, a missing or repeated shard, and any
    macroreplication missing or present twice.
    """
    items = [s if isinstance(s, ValidationShard) else ValidationShard.read(s) for s in shards]
    if not items:
        raise ParameterError("merge needs at least one shard file")
    run = items[0].run
    for s in items[1:]:
        if s.run != run:
            diff = sorted(k for k in set(run) | set(s.run) if run.get(k) != s.run.get(k))
            raise ParameterError(f"shard {s.shard[0]}/{s.shard[1]} is from another validation "
                                 f"(differs in {', '.join(diff)})")
    n, total = int(run["shards"]), int(run["macroreps"])
    seen = sorted(s.shard[0] for s in items)
    if seen != list(range(n)):
        missing = sorted(set(range(n)) - set(seen))
        twice = sorted({i for i in seen if seen.count(i) > 1})
        raise ParameterError(f"merge needs each of the {n} shards once; missing {missing}, repeated {twice}")
    runs = {k: np.concatenate([s.runs[k] for s in items]) for k in items[0].runs}
    order = np.argsort(runs["index"], kind="stable")
    runs = {k: v[order] for k, v in runs.items()}
    if not np.array_equal(runs["index"], np.arange(total)):
        raise ParameterError(f"the shards do not hold macroreplications 0..{total - 1} exactly once")
    return _summarise(run["procedure"], run["params"], run["problem"], float(run["delta"]), runs)
