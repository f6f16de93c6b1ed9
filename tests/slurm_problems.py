"""Problems for the Slurm tests, found by ``rands run`` through a ``rands.problems`` entry point.

``test_slurm.py`` writes a small ``*.dist-info`` next to a copy of this module (the way an
installed user package declares its problems) and puts that folder on the jobs' PYTHONPATH.
"""
from __future__ import annotations

import time

from rands.problems.normal import Slippage


class SleepySlippage(Slippage):
    """Slippage whose samples take ``cost`` seconds each of waiting: a slow external simulator
    that uses no CPU, so a run lasts long enough for a signal to land mid-run on a busy machine.
    The outputs are those of :class:`Slippage` (the waiting changes nothing else)."""

    name = "sleepy-slippage"

    def __init__(self, k: int = 20, delta: float = 0.5, cost: float = 1e-3):
        super().__init__(k=k, delta=delta)
        self.cost = float(cost)

    def params(self):
        return {**super().params(), "cost": self.cost}

    def simulate(self, systems, reps, streams):
        time.sleep(self.cost * len(systems))
        return super().simulate(systems, reps, streams)


ENTRY_POINTS = {
    "sleepy-slippage": "slurm_problems:SleepySlippage",
    "faulty-slippage": "rands.parallel.check:FaultySlippage",   # raises on rank 1 (see there)
}
