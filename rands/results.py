"""The result record of a selection: plain data, JSON-serialisable."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SelectionResult:
    """Outcome of one selection run.

    best : selected system (0-based). total_samples : samples the procedure used (what its
    guarantee counts). samples_simulated : samples simulated (the cost; larger than
    total_samples when a sequential procedure drew stages ahead).
    sample_sizes, means : per system (means nan where unsampled); variances : per
    system sample variances (nan where n < 2; None when not recorded). contention :
    [samples used, systems still in contention] whenever the count changed during the run.
    wall_time : seconds. trace : per-stage records. accounting : simulation
    time, utilization per rank/worker. extras : procedure-specific outputs.
    """

    best: int
    total_samples: int
    sample_sizes: np.ndarray
    means: np.ndarray
    wall_time: float
    procedure: str
    params: dict[str, Any]
    seed: Any
    problem: dict[str, Any] = field(default_factory=dict)
    guarantee: str = ""
    best_label: str = ""
    trace: list[dict] = field(default_factory=list)
    accounting: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    variances: np.ndarray | None = None
    contention: list = field(default_factory=list)   # [samples used, systems in contention]
    samples_simulated: int | None = None

    def __post_init__(self) -> None:
        # public numbers are plain Python numbers (numpy scalars print as np.float64(...))
        self.params, self.seed = _plain(self.params), _plain(self.seed)
        self.trace, self.extras = _plain(self.trace), _plain(self.extras)
        self.accounting, self.problem = _plain(self.accounting), _plain(self.problem)
        self.best, self.total_samples = int(self.best), int(self.total_samples)
        self.samples_simulated = (self.total_samples if self.samples_simulated is None
                                  else int(self.samples_simulated))
        self.wall_time = float(self.wall_time)

    @property
    def best_mean(self) -> float:
        return float(self.means[self.best])

    def to_frame(self):
        """One row per system: ``system, samples, mean, variance, std_error, selected``
        (a pandas DataFrame indexed by system; needs pandas, the ``rands[pandas]`` extra)."""
        pd = _pandas()
        n = np.asarray(self.sample_sizes, dtype=np.int64)
        var = (np.full(n.shape, np.nan) if self.variances is None
               else np.asarray(self.variances, dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(var / n)
        frame = pd.DataFrame({"samples": n, "mean": np.asarray(self.means, dtype=float),
                              "variance": var, "std_error": se,
                              "selected": np.arange(n.size) == self.best})
        frame.index.name = "system"
        return frame

    def to_dict(self) -> dict[str, Any]:
        means = [None if not np.isfinite(m) else float(m) for m in self.means]
        return {
            "best": int(self.best), "best_label": self.best_label,
            "best_mean": None if means[self.best] is None else means[self.best],
            "total_samples": int(self.total_samples), "samples_simulated": int(self.samples_simulated),
            "sample_sizes": [int(n) for n in self.sample_sizes], "means": means,
            "wall_time": float(self.wall_time), "procedure": self.procedure,
            "params": _jsonable(self.params), "seed": _jsonable(self.seed),
            "problem": _jsonable(self.problem), "guarantee": self.guarantee,
            "trace": _jsonable(self.trace), "accounting": _jsonable(self.accounting),
            "extras": _jsonable(self.extras),
            "contention": _jsonable(self.contention),
            **({} if self.variances is None else {"variances": _jsonable(
                np.where(np.isfinite(self.variances), self.variances, np.nan))}),
        }

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SelectionResult":
        means = np.array([np.nan if m is None else m for m in d["means"]], dtype=float)
        return cls(best=int(d["best"]), total_samples=int(d["total_samples"]),
                   sample_sizes=np.asarray(d["sample_sizes"], dtype=np.int64), means=means,
                   wall_time=float(d["wall_time"]), procedure=d["procedure"], params=d["params"],
                   seed=d["seed"], problem=d.get("problem", {}), guarantee=d.get("guarantee", ""),
                   best_label=d.get("best_label", ""), trace=d.get("trace", []),
                   accounting=d.get("accounting", {}), extras=d.get("extras", {}),
                   contention=d.get("contention", []), samples_simulated=d.get("samples_simulated"),
                   variances=None if d.get("variances") is None else np.array(
                       [np.nan if v is None else v for v in d["variances"]], dtype=float))

    def summary(self) -> str:
        """One line; for a problem that minimises (samples are the negated response, e.g.
        ``from_simopt(..., minimize=True)``) the response itself is shown too."""
        text = (f"{self.procedure}: best system {self.best} ({self.best_label}) with estimated mean "
                f"{self.best_mean:.6g} from {self.total_samples} samples in {self.wall_time:.2f} s")
        if self.problem.get("minimize") is True:
            text += f" (minimised response: {-self.best_mean:.6g})"
        return text


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("to_frame needs pandas: pip install 'rands[pandas]'") from None
    return pandas


def _plain(x):
    """numpy scalars inside dicts, lists and tuples as Python numbers (arrays kept)."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    if isinstance(x, np.generic):
        return x.item()
    return x


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
