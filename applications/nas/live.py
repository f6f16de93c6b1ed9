"""Live NAS problem: a sample is one seeded training run of an architecture.

Sample (a, r) = validation accuracy (%) of architecture a after training for a
fixed budget (:class:`TrainConfig`) with a seed drawn from the random stream of
(a, r). Under CRN the stream is (r)'s, so every architecture at replication r
shares the data split, minibatch order and initialization seed.
"""
from __future__ import annotations

import numpy as np

from rands.errors import ParameterError, SimulationError
from rands.params import InstanceOf, Sequence_, ints, optional
from rands.problems.base import Problem
from rands.streams import Streams, generator_for

from .space import N_ARCHS, arch_string, parse_arch


class LiveNAS(Problem):
    """Architectures trained live on scikit-learn's digits (registry name "nas-live").

    Parameters
    ----------
    archs : architecture strings or indices of our enumeration (default: 8 seeded random ones).
    epochs, channels, cells : training budget and network size (see TrainConfig).
    """

    name = "nas-live"
    _parameter_constraints = {
        "archs": optional([Sequence_(InstanceOf((int, np.integer, str), "an architecture index or string"),
                                     min_len=2, what="a list of at least 2 architecture indices or strings")]),
        "epochs": ints(1, 10**4), "channels": ints(1, 4096), "cells": ints(1, 64),
        "n_archs": ints(2, N_ARCHS), "archs_seed": ints(0)}

    def __init__(self, archs=None, epochs: int = 2, channels: int = 8, cells: int = 1,
                 n_archs: int = 8, archs_seed: int = 0):
        if archs is None:
            rng = np.random.default_rng(np.random.SeedSequence([archs_seed, 0x6C697665]))
            archs = [int(a) for a in rng.choice(N_ARCHS, size=n_archs, replace=False)]
        strings = []
        for a in archs:
            if isinstance(a, (int, np.integer)):
                strings.append(arch_string(int(a)))
            else:
                parse_arch(a)
                strings.append(a)
        if len(strings) < 2:
            raise ParameterError(f"archs must name at least 2 architectures, got {len(strings)}")
        self.archs = strings
        self.k = len(strings)
        self.epochs, self.channels, self.cells = int(epochs), int(channels), int(cells)

    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        from .train import TrainConfig, train_once  # torch only when sampling

        config = TrainConfig(epochs=self.epochs, channels=self.channels, cells=self.cells)
        out = np.empty(len(systems))
        for n, (a, r) in enumerate(zip(systems, reps)):
            seed = int(generator_for(streams, int(a), int(r)).integers(2**62))
            try:
                out[n] = 100.0 * train_once(self.archs[int(a)], seed, config)["valid_acc"]
            except Exception as exc:  # noqa: BLE001 - re-raised with its location
                raise SimulationError(f"training raised {type(exc).__name__}: {exc}",
                                      system=int(a), replication=int(r)) from exc
        return out

    def label(self, system: int) -> str:
        return self.archs[int(system)]

    def params(self):
        return {"archs": self.archs, "epochs": self.epochs, "channels": self.channels, "cells": self.cells}
