"""Tabular NAS-Bench-201 problems: the official benchmark file or our mini benchmark.

A sample of architecture a at replication r is the recorded validation accuracy
of one of a's recorded training seeds, drawn uniformly: with u the first uniform
of the random stream of (a, r) (of (r) under CRN), the seed is
``recorded_seeds[floor(u * n_seeds)]`` (``sampling="with_replacement"``, the
default). With ``sampling="without_replacement"`` replications r = 0..n-1 of a
macroreplication read the n recorded seeds in a random order (a permutation drawn
from the stream of (a, block 0), of (block 0) under CRN), replications n..2n-1 a
fresh permutation, and so on: no seed repeats before all have been read. Under CRN every architecture at
replication r reads the same seed, the tabular analogue of sharing the data
order and initialization. The truth is the mean over all recorded seeds, so
PCS/PGS are exact for the table.

The official file (a torch pickle of a plain dict) is read with torch's
weights-only unpickler, which runs no code from the file, and handed to
``nas_201_api.NASBench201API``; :meth:`TabularNAS.from_file` says what
``trust_pickle=True`` trusts. Our mini
benchmark is JSON; :func:`to_api_dict` converts it to the API's dict format.
"""
from __future__ import annotations

import json
from pathlib import Path

import numba
import numpy as np

from rands.errors import ParameterError
from rands.params import String, optional
from rands.problems.base import Problem
from rands.streams import Streams, stream_state, system_stream_key, uniform_at

MINI_PATH = Path(__file__).with_name("data") / "mini_digits.json"
#: the issue-14 rebuild: 200 cells x 25 seeds, 10 epochs, one validation split for every seed
FIXED_PATH = Path(__file__).with_name("data") / "mini_digits_fixed.json"


@numba.njit(cache=True)
def _tabular_kernel(seed_key, crn, systems, reps, table, n_seeds, out):
    for n in range(systems.shape[0]):
        a = systems[n]
        st = stream_state(system_stream_key(seed_key, a, crn), reps[n])
        j = np.int64(uniform_at(st, 0) * n_seeds[a])
        out[n] = table[a, j]
    return out


_PERM_BLOCK_OFFSET = np.int64(1) << np.int64(40)  # permutation streams apart from the replication streams


@numba.njit(cache=True)
def _tabular_kernel_blocks(seed_key, crn, systems, reps, table, n_seeds, out):
    """Without replacement: replication r reads position r % m of permutation r // m of the m seeds."""
    for n in range(systems.shape[0]):
        a = systems[n]
        m = n_seeds[a]
        block = reps[n] // m
        pos = reps[n] % m
        st = stream_state(system_stream_key(seed_key, a, crn), _PERM_BLOCK_OFFSET + block)
        u = np.empty(m)
        for i in range(m):
            u[i] = uniform_at(st, i)
        out[n] = table[a, np.argsort(u)[pos]]
    return out


SAMPLING = ("with_replacement", "without_replacement")


class TabularNAS(Problem):
    """Architectures of a recorded benchmark as R&S systems (maximize accuracy, in %).

    Parameters
    ----------
    table : (k, max_seeds) recorded accuracies (nan-padded); archs : their strings.
    """

    name = "nas-tabular"

    def __init__(self, table, archs, *, source: str = "", dataset: str = "", metric: str = "",
                 sampling: str = "with_replacement"):
        if sampling not in SAMPLING:
            raise ParameterError(f"sampling must be one of {SAMPLING}, got {sampling!r}")
        self.sampling = sampling
        t = np.asarray(table, dtype=np.float64)
        if t.ndim != 2 or t.shape[0] != len(archs):
            raise ParameterError("table must be (number of archs, seeds)")
        n_seeds = np.sum(np.isfinite(t), axis=1).astype(np.int64)
        if (n_seeds == 0).any():
            raise ParameterError("every architecture needs at least one recorded seed")
        # recorded values first in each row (nan padding at the end)
        packed = np.full_like(t, np.nan)
        for a in range(t.shape[0]):
            vals = t[a][np.isfinite(t[a])]
            packed[a, : vals.size] = vals
        self.table = packed
        self.n_seeds = n_seeds
        self.archs = list(archs)
        self.k = len(self.archs)
        self.true_means = np.array([packed[a, :n].mean() for a, n in enumerate(n_seeds)])
        self.source, self.dataset, self.metric = source, dataset, metric

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        systems = np.ascontiguousarray(systems, dtype=np.int64)
        out = np.empty(systems.shape[0])
        kernel = _tabular_kernel_blocks if self.sampling == "without_replacement" else _tabular_kernel
        return kernel(streams.seed_key, streams.crn, systems,
                               np.ascontiguousarray(reps, dtype=np.int64), self.table, self.n_seeds, out)

    def label(self, system: int) -> str:
        return self.archs[int(system)]

    def params(self):
        return {"source": self.source, "dataset": self.dataset, "metric": self.metric, "k": self.k,
                "sampling": self.sampling}

    def with_sampling(self, sampling: str) -> "TabularNAS":
        """The same table sampled ``"with_replacement"`` or ``"without_replacement"`` (see the module doc)."""
        return TabularNAS(self.table, self.archs, source=self.source, dataset=self.dataset, metric=self.metric,
                          sampling=sampling)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_api(cls, api, dataset: str = "cifar10-valid", metric: str = "x-valid", hp: str = "200",
                 indices=None) -> "TabularNAS":
        """From a ``NASBench201API`` (official file or :func:`to_api_dict`), per-seed accuracies."""
        indices = list(api.evaluated_indexes if indices is None else indices)
        rows, archs = [], []
        for idx in indices:
            info = api.query_meta_info_by_index(idx, hp=hp)
            seeds = info.get_dataset_seeds(dataset)
            rows.append([info.get_metrics(dataset, metric, is_random=int(s))["accuracy"] for s in seeds])
            archs.append(api.meta_archs[idx])
        width = max(len(r) for r in rows)
        table = np.full((len(rows), width), np.nan)
        for a, r in enumerate(rows):
            table[a, : len(r)] = r
        return cls(table, archs, source=getattr(api, "filename", "api") or "api", dataset=dataset,
                   metric=metric)

    @classmethod
    def from_file(cls, path: str | Path, *, trust_pickle: bool = False, **kw) -> "TabularNAS":
        """From a benchmark file: our mini JSON, or an official NAS-Bench-201 ``.pth`` through nas_201_api.

        The official files are torch pickles of a plain dict (``meta_archs``, ``arch2infos``,
        ``evaluated_indexes``). They are read with ``torch.load(weights_only=True)`` whatever the torch
        version's default: the restricted unpickler builds only containers, numbers, strings and tensors
        and runs no code from the file. A file it refuses raises ParameterError; ``trust_pickle=True``
        then loads it as a full pickle, which executes whatever the file contains: only for a file whose
        origin you trust (e.g. the authors' release, checked against its published hash). ``kw`` go to
        :meth:`from_api` (dataset, metric, hp, indices). The API deep-copies the dict: the official
        2.1 GB file needs about twice that in memory.
        """
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"benchmark file {str(path)!r} does not exist")
        if path.suffix == ".json":
            return cls.from_mini(json.loads(path.read_text()), source=path.name)
        try:
            from nas_201_api import NASBench201API
        except ImportError as exc:
            raise ImportError("reading an official NAS-Bench-201 file needs the 'nas' extra: "
                              "pip install 'rands[nas]'") from exc
        import pickle

        import torch
        try:
            data = torch.load(str(path), map_location="cpu", weights_only=not trust_pickle)
        except pickle.UnpicklingError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ParameterError(f"benchmark file {str(path)!r} holds objects the weights-only loader refuses "
                                 f"({first}); pass trust_pickle=True only if you trust the file (a full "
                                 "pickle runs code)") from exc
        if not isinstance(data, dict) or not {"meta_archs", "arch2infos", "evaluated_indexes"} <= set(data):
            raise ParameterError(f"benchmark file {str(path)!r} is not a NAS-Bench-201 dict (needs keys "
                                 "'meta_archs', 'arch2infos', 'evaluated_indexes')")
        api = NASBench201API(data, verbose=False)
        api.filename = path.name
        return cls.from_api(api, **kw)

    @classmethod
    def from_mini(cls, data: dict, source: str = "mini") -> "TabularNAS":
        if data.get("format") != "rands-nas201-mini-v1":
            raise ParameterError(f"not a rands mini benchmark (format {data.get('format')!r})")
        return cls(100.0 * np.asarray(data["valid_acc"]), data["archs"], source=source,
                   dataset=data["dataset"], metric=data["metric"])


class MiniNAS(TabularNAS):
    """The shipped mini benchmark (registry name "nas-mini"): 500 architectures x 10 seeds on digits."""

    name = "nas-mini"
    _parameter_constraints = {"path": optional([String("a file path")])}

    def __init__(self, path: str | None = None):
        p = Path(path) if path else MINI_PATH
        if not p.is_file():
            raise ParameterError(f"mini benchmark {str(p)!r} not found; rebuild it with "
                                 "python -m rands.applications.nas.build_mini")
        other = TabularNAS.from_mini(json.loads(p.read_text()), source=p.name)
        self.__dict__.update(other.__dict__)
        self.path = path

    def params(self):
        return {"path": self.path}


def to_api_dict(data: dict) -> dict:
    """Our mini benchmark in the official API's dict format (``NASBench201API(d)`` loads it).

    Dataset name ``data['dataset']`` with evaluation set ``x-valid``; the same
    records are stored for both hyper-parameter settings the API expects ('12', '200').
    """
    dataset = data["dataset"]
    epochs = int(data["config"]["epochs"])
    arch2infos = {}
    for idx, (arch, accs, secs) in enumerate(zip(data["archs"], data["valid_acc"], data["train_seconds"])):
        all_results, seeds = {}, []
        for seed, acc, sec in zip(data["seeds"], accs, secs):
            seeds.append(int(seed))
            last = {f"x-valid@{e}": (100.0 * acc if e == epochs - 1 else None) for e in range(epochs)}
            all_results[(dataset, int(seed))] = {
                "name": dataset, "net_state_dict": None, "train_acc1es": {e: None for e in range(epochs)},
                "train_acc5es": None, "train_losses": {e: None for e in range(epochs)},
                "train_times": {e: sec / epochs for e in range(epochs)},
                "arch_config": {"name": "infer.tiny", "channel": data["config"]["channels"],
                                "num_cells": data["config"]["cells"], "arch_str": arch, "class_num": 10},
                "params": None, "flop": None, "seed": int(seed), "epochs": epochs, "latency": None,
                "eval_names": ["x-valid"], "eval_acc1es": last,
                "eval_times": {f"x-valid@{e}": 0.0 for e in range(epochs)},
                "eval_losses": {f"x-valid@{e}": None for e in range(epochs)}}
        state = {"arch_index": idx, "arch_str": arch, "all_results": all_results,
                 "dataset_seed": {dataset: sorted(seeds)}, "clear_net_done": True}
        arch2infos[idx] = {"less": state, "full": state}
    return {"meta_archs": list(data["archs"]), "arch2infos": arch2infos,
            "evaluated_indexes": list(range(len(data["archs"])))}
