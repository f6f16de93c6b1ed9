"""Trained policies as R&S systems: pick the best checkpoint with a guarantee.

System i is a policy (a checkpoint file or a :class:`Policy`); its sample at
replication r is the binary reward of one response sampled at temperature 1 on an
evaluation prompt drawn uniformly from the evaluation split. All randomness comes
from ``rands.streams``: the prompt index is uniform 0 and the five token draws are
uniforms 1..5 of the (seed, stream, r) replication state, inverse-CDF sampled. So
sample (i, r) depends only on (seed, i, r); under CRN only on (seed, r): every system
sees the same prompt (and the same token uniforms) at replication r.

The true mean of system i (its pass@1 on the evaluation split) is computed exactly
by summing the policy's probability of every solution of every prompt, so PCS/PGS of
a selection can be measured without evaluation noise (``true_means``).
"""
from __future__ import annotations

from typing import Sequence

import numba
import numpy as np
import torch

from ...errors import ParameterError
from ...problems import register as _register
from ...params import POSITIVE, Boolean, InstanceOf, Sequence_, String, ints, optional
from ...problems.base import Problem
from ...streams import Streams, stream_state, uniform_at
from . import policy as P
from . import task as T


@numba.njit(cache=True)
def _uniforms(keys: np.ndarray, reps: np.ndarray, m: int) -> np.ndarray:
    out = np.empty((keys.shape[0], m))
    for n in range(keys.shape[0]):
        st = stream_state(keys[n], reps[n])
        for j in range(m):
            out[n, j] = uniform_at(st, j)
    return out


def exact_pass1(pol: P.Policy, split: T.Split, temperature: float = 1.0) -> np.ndarray:
    """Exact probability that one sample solves each instance (sum over its solution set)."""
    prompts, sols, owner = [], [], []
    for i in range(len(split)):
        c = T.candidates(split.digits[i])
        ok = T.reward(c, np.repeat(split.digits[i][None], len(c), 0), np.full(len(c), split.targets[i])) > 0
        sols.append(c[ok])
        owner.append(np.full(int(ok.sum()), i))
    sols = torch.as_tensor(np.concatenate(sols))
    owner = np.concatenate(owner)
    prompts = torch.as_tensor(split.prompts(owner))
    with torch.no_grad():
        logits = pol.response_logits(prompts, sols).to(torch.float64) / temperature
        lp = torch.log_softmax(logits, -1).gather(-1, sols.unsqueeze(-1)).squeeze(-1).sum(1)
    return np.bincount(owner, weights=lp.exp().numpy(), minlength=len(split))


class PolicyProblem(Problem):
    """k trained policies; sample = reward on a random evaluation prompt (see module docstring).

    Parameters
    ----------
    checkpoints : sequence of checkpoint paths (``policy.save``) or Policy objects.
    labels : optional names of the systems.
    eval_per_bucket, split_seed : the evaluation split (``task.make_splits``).
    temperature : sampling temperature.
    exact_truth : compute ``true_means`` exactly (pass@1 over the evaluation split).
    block, cache_blocks : replications computed per batched forward pass, and how many such
        blocks are cached (oldest dropped first).
    """

    name = "riskpo_policies"
    _parameter_constraints = {
        "checkpoints": [Sequence_(InstanceOf((str, P.Policy), "a checkpoint path or a Policy"), min_len=2,
                                  what="a list of at least 2 checkpoint paths or Policy objects")],
        "labels": optional([Sequence_(String(), what="a list of k names")]),
        "eval_per_bucket": ints(1), "split_seed": ints(0), "temperature": POSITIVE,
        "exact_truth": [Boolean()], "block": ints(1), "cache_blocks": ints(1)}

    def __init__(self, checkpoints: Sequence, labels: Sequence[str] | None = None, eval_per_bucket: int = 100,
                 split_seed: int = 0, temperature: float = 1.0, exact_truth: bool = True, block: int = 256,
                 cache_blocks: int = 4096):
        if len(checkpoints) < 2:
            raise ParameterError(f"checkpoints must hold at least 2 policies, got {len(checkpoints)}")
        if not temperature > 0:
            raise ParameterError(f"temperature must be > 0, got {temperature}")
        self.checkpoints = list(checkpoints)
        self.k = len(self.checkpoints)
        self.labels = list(labels) if labels is not None else [
            c if isinstance(c, str) else f"policy{i}" for i, c in enumerate(self.checkpoints)]
        if len(self.labels) != self.k:
            raise ParameterError(f"labels must have one entry per checkpoint ({self.k}), got {len(self.labels)}")
        self.eval_per_bucket = int(eval_per_bucket)
        self.split_seed = int(split_seed)
        self.temperature = float(temperature)
        if block < 1 or cache_blocks < 1:
            raise ParameterError(f"block and cache_blocks must be >= 1, got {block}, {cache_blocks}")
        self.block = int(block)
        self.cache_blocks = int(cache_blocks)
        self._cache: dict = {}
        _, self.split = T.make_splits(seed=self.split_seed, eval_per_bucket=self.eval_per_bucket)
        self._policies = [c if isinstance(c, P.Policy) else P.load(c) for c in self.checkpoints]
        for p in self._policies:
            p.eval()
        self.true_means = (np.array([exact_pass1(p, self.split, self.temperature).mean() for p in self._policies])
                           if exact_truth else None)

    def prompt_index(self, reps: np.ndarray, streams: Streams, systems: np.ndarray | None = None) -> np.ndarray:
        """Evaluation prompt of each (system, replication) (the same for all systems under CRN)."""
        systems = np.zeros(len(reps), np.int64) if systems is None else np.asarray(systems, np.int64)
        u = _uniforms(streams.keys(systems), np.asarray(reps, np.int64), 1)[:, 0]
        return np.minimum((u * len(self.split)).astype(np.int64), len(self.split) - 1)

    def _rewards(self, system: int, key: np.uint64, reps: np.ndarray) -> np.ndarray:
        u = _uniforms(np.full(len(reps), key, dtype=np.uint64), reps, 1 + T.RESPONSE_LEN)
        idx = np.minimum((u[:, 0] * len(self.split)).astype(np.int64), len(self.split) - 1)
        resp = self._policies[system].sample_with_uniforms(
            torch.as_tensor(self.split.prompts(idx)), torch.as_tensor(u[:, 1:]), self.temperature)
        return T.reward(resp.numpy(), self.split.digits[idx], self.split.targets[idx])

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        """Rewards of (systems[n], reps[n]).

        Sequential procedures ask for a few replications per system per stage, so whole
        blocks of ``block`` replications are computed in one batched forward pass and
        cached (keyed by stream key, system and block): a value still depends only on
        (seed, system, replication), never on the request pattern.
        """
        systems = np.asarray(systems, np.int64)
        reps = np.asarray(reps, np.int64)
        keys = streams.keys(systems)
        out = np.empty(len(systems), dtype=np.float64)
        blk = reps // self.block
        pair = np.stack([systems, blk], 1)
        for i, b in np.unique(pair, axis=0):
            sel = np.flatnonzero((systems == i) & (blk == b))
            ck = (int(keys[sel[0]]), int(i), int(b))
            vals = self._cache.get(ck)
            if vals is None:
                vals = self._rewards(int(i), keys[sel[0]], np.arange(b * self.block, (b + 1) * self.block))
                if len(self._cache) >= self.cache_blocks:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[ck] = vals
            out[sel] = vals[reps[sel] - b * self.block]
        return out

    def params(self) -> dict:
        return {"checkpoints": [c if isinstance(c, str) else f"<policy {i}>" for i, c in enumerate(self.checkpoints)],
                "labels": self.labels, "eval_per_bucket": self.eval_per_bucket, "split_seed": self.split_seed,
                "temperature": self.temperature}

    def label(self, system: int) -> str:
        return str(self.labels[int(system)])


_register("riskpo_policies", "rands.applications.riskpo.problem:PolicyProblem")
