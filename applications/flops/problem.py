"""Allocator settings as R&S systems: sample = one seeded training run's final accuracy."""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from rands.errors import ParameterError, SimulationError
from rands.params import Mapping_, Options, Sequence_, ints, optional
from rands.problems.base import Problem, check_k
from rands.streams import Streams, generator_for

__all__ = ["FlopsProblem", "default_settings"]


def default_settings(estimator: str = "lr", queries_per_point: int = 8) -> list[dict]:
    """The five allocators at one estimator and budget."""
    return [{"estimator": estimator, "allocator": a, "queries_per_point": queries_per_point}
            for a in ("uniform", "loss", "neyman", "gaussian", "bernoulli")]


class FlopsProblem(Problem):
    """k (estimator, allocator, hyperparameter) settings; a sample is a run's final test accuracy.

    System i, replication r: ``train_run(settings[i], seed)`` with the seed drawn from
    the (seed, i, r) stream (``rands.streams.generator_for``). Under CRN the stream
    is (seed, r) for every system, so all settings at replication r fine-tune from
    the same few-shot subset, in the same minibatch order, with the same
    perturbation stream. Runs are expensive (seconds), so pairs are filled one at a time.
    """

    name = "flops"
    _parameter_constraints = {
        "settings": optional([Sequence_(Mapping_(), min_len=2, what="a list of at least 2 setting tables")]),
        "model": [Options(("mlp", "vit"))], "steps": ints(1), "batch": ints(1), "shots": ints(1)}

    def __init__(self, settings: Sequence[dict] | None = None, *, model: str = "mlp", steps: int = 150,
                 batch: int = 32, shots: int = 16) -> None:
        settings = default_settings() if settings is None else [dict(s) for s in settings]
        self.k = check_k(len(settings))
        from .train import DEFAULTS
        for j, s in enumerate(settings):
            unknown = sorted(set(s) - set(DEFAULTS))
            if unknown:
                raise ParameterError(f"settings[{j}] has unknown keys {unknown}; valid: {sorted(DEFAULTS)}")
        from .models import MODELS
        if model not in MODELS:
            raise ParameterError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
        for nm, v in (("steps", steps), ("batch", batch), ("shots", shots)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ParameterError(f"{nm} must be a positive integer, got {v!r}")
        self.settings = settings
        self.model, self.steps, self.batch, self.shots = model, int(steps), int(batch), int(shots)

    def run_seed(self, streams: Streams, system: int, rep: int) -> int:
        return int(generator_for(streams, system, rep).integers(0, 2 ** 62))

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        from .train import train_run
        out = np.empty(len(systems), dtype=np.float64)
        for n, (i, r) in enumerate(zip(np.asarray(systems), np.asarray(reps))):
            try:
                res = train_run(self.settings[int(i)], self.run_seed(streams, int(i), int(r)), model=self.model,
                                steps=self.steps, batch=self.batch, shots=self.shots, eval_every=self.steps)
            except Exception as exc:  # noqa: BLE001 - re-raised with its location
                raise SimulationError(f"training run raised {type(exc).__name__}: {exc}",
                                      system=int(i), replication=int(r)) from exc
            out[n] = res["final_acc"]
        return out

    def params(self) -> dict[str, Any]:
        return {"settings": self.settings, "model": self.model, "steps": self.steps, "batch": self.batch,
                "shots": self.shots}

    def label(self, system: int) -> str:
        s = self.settings[int(system)]
        extra = {k: v for k, v in s.items() if k not in ("estimator", "allocator", "queries_per_point")
                 and v not in ({}, None)}
        params = extra.pop("allocator_params", {})
        head = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
        tail = (f"[{head}]" if head else "") + (f" {json.dumps(extra, sort_keys=True)}" if extra else "")
        return f"{s.get('estimator', 'lr')}/{s.get('allocator', 'uniform')}/q{s.get('queries_per_point', 8)}{tail}"
