"""Fine-tuned diffusion models as rands systems.

System i is a denoiser (a fine-tune); its sample at replication r is the reward
of one chain driven by noise from ``rands.streams.generator_for(streams, i, r)``:
x_T then the step noises T..1, (T+1)*dim standard normals. Under CRN the
generator depends on (seed, r) only, so every fine-tune sees the same x_T and
step noises at replication r (and any partition of the block gives the same
numbers). Procedures that exploit CRN compare fine-tunes on paired draws.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from rands.errors import ParameterError, check_int
from rands.params import Callable_, InstanceOf, Interval, Mapping_, Sequence_, String, ints, optional
from rands.problems.base import Problem, check_k
from rands.streams import Streams, generator_for

from .estimator import sample_chain
from .schedule import DDIMSchedule, NoiseBank, linear_alphas_cumprod

__all__ = ["FineTuneProblem", "build_reward"]


def build_reward(spec: dict):
    """A reward from a JSON spec: {"kind": "classifier_logprob" | "classifier_hit", "classifier": NPZ path,
    "target": int} or {"kind": "compressibility"}."""
    from .models import load_npz
    from .rewards import ClassifierHit, ClassifierLogProb, Compressibility
    kind = spec.get("kind")
    if kind in ("classifier_logprob", "classifier_hit"):
        clf = load_npz(spec["classifier"])
        cls = ClassifierLogProb if kind == "classifier_logprob" else ClassifierHit
        return cls(clf, int(spec.get("target", 3)))
    if kind == "compressibility":
        return Compressibility()
    raise ParameterError(f"reward kind must be 'classifier_logprob', 'classifier_hit' or 'compressibility', "
                         f"got {kind!r}")


class FineTuneProblem(Problem):
    """Select the fine-tune with the largest expected reward.

    Parameters
    ----------
    models : denoisers (``torch.nn.Module``) or NPZ paths written by ``models.save_npz``.
    reward : a reward callable (x_0 -> (B,)) or a JSON spec for :func:`build_reward`.
    schedule : a :class:`DDIMSchedule` or {"train_steps", "num_steps", "eta"}.
    shape : shape of one sample (default (64,), flattened 8x8 digits).
    labels : names of the systems.
    chunk : chains per network call. Every call is padded to exactly ``chunk`` rows, so a
        chain's floating-point result never depends on which other chains share its block (rows
        of a fixed-shape batch do not interact): sample (i, r) is bit-identical in any block.
    """

    name = "rlr_finetunes"
    _parameter_constraints = {
        "models": [Sequence_(InstanceOf((str, Path, torch.nn.Module), "a torch module or an NPZ path"),
                             min_len=2, what="a list of at least 2 torch modules or NPZ paths")],
        "reward": [Callable_(), Mapping_()],
        "schedule": [Mapping_(), InstanceOf(DDIMSchedule, "a DDIMSchedule")],
        "shape": [Sequence_(Interval(int, 1, None), what="a list of integers >= 1")],
        "labels": optional([Sequence_(String(), what="a list of k names")]),
        "chunk": ints(1)}

    def __init__(self, models: Sequence, reward, schedule, *, shape: Sequence[int] = (64,),
                 labels: Sequence[str] | None = None, chunk: int = 64):
        from .models import load_npz
        self.k = check_k(len(models))
        self._paths = [str(m) for m in models] if all(isinstance(m, (str, Path)) for m in models) else None
        self.models = [load_npz(m) if isinstance(m, (str, Path)) else m for m in models]
        for m in self.models:
            if not isinstance(m, torch.nn.Module):
                raise ParameterError(f"models must be torch modules or NPZ paths, got {type(m).__name__}")
            m.eval()
        self._reward_spec = reward if isinstance(reward, dict) else None
        self.reward = build_reward(reward) if isinstance(reward, dict) else reward
        if not callable(self.reward):
            raise ParameterError("reward must be callable (x_0 -> rewards) or a reward spec dict")
        self._schedule_spec = schedule if isinstance(schedule, dict) else None
        if isinstance(schedule, dict):
            ac = linear_alphas_cumprod(int(schedule.get("train_steps", 200)))
            schedule = DDIMSchedule.from_alphas(ac, int(schedule.get("num_steps", 10)),
                                                float(schedule.get("eta", 1.0)))
        if not isinstance(schedule, DDIMSchedule):
            raise ParameterError("schedule must be a DDIMSchedule or a dict with train_steps, num_steps, eta")
        self.schedule = schedule
        self.shape = tuple(int(s) for s in shape)
        self.labels = list(labels) if labels is not None else None
        if self.labels is not None and len(self.labels) != self.k:
            raise ParameterError(f"labels must have length k={self.k}, got {len(self.labels)}")
        self.chunk = check_int("chunk", chunk, low=1)

    def noise_values(self, system: int, reps: np.ndarray, streams: Streams) -> np.ndarray:
        """(len(reps), (T+1)*dim) standard normals of (system, r) (of r only under CRN)."""
        width = (self.schedule.num_steps + 1) * int(np.prod(self.shape))
        return np.stack([generator_for(streams, int(system), int(r)).standard_normal(width) for r in reps])

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        systems = np.asarray(systems, dtype=np.int64)
        reps = np.asarray(reps, dtype=np.int64)
        out = np.empty(systems.shape[0], dtype=np.float64)
        for i in np.unique(systems):
            idx = np.nonzero(systems == i)[0]
            for s in range(0, idx.size, self.chunk):
                sl = idx[s:s + self.chunk]
                vals = self.noise_values(int(i), reps[sl], streams)
                pad = np.zeros((self.chunk, vals.shape[1]))
                pad[:sl.size] = vals
                noise = NoiseBank.from_numpy(pad, self.schedule.num_steps, self.shape)
                with torch.no_grad():
                    x0 = sample_chain(self.models[int(i)], self.schedule, noise).x0
                    out[sl] = self.reward(x0).double().numpy()[:sl.size]
        return out

    def params(self) -> dict[str, Any]:
        if self._paths is None or self._reward_spec is None or self._schedule_spec is None:
            return {"k": self.k}
        return {"models": self._paths, "reward": self._reward_spec, "schedule": self._schedule_spec,
                "shape": list(self.shape), "labels": self.labels, "chunk": self.chunk}

    def label(self, system: int) -> str:
        return self.labels[system] if self.labels is not None else str(int(system))
