"""Problems for the Slurm tests, found by ``rands run`` through a ``rands.problems`` entry point.

``test_slurm.py`` writes a small ``*.dist-info`` next to a copy of this module (the way an
installed user package declares its problems) and puts that folder on the jobs' PYTHONPATH.
"""
from __future__ import annotations

import os
import time

from rands.parallel.check import FaultySlippage
from rands.problems.normal import Slippage

#: seconds each sample of ``sleepy-slippage`` waits, read from the job's environment
WAIT_VAR = "RANDS_TEST_SAMPLE_WAIT"


def _wait(n: int) -> None:
    wait = float(os.environ.get(WAIT_VAR) or 0.0)
    if wait > 0:
        time.sleep(wait * n)


class SleepySlippage(Slippage):
    """Slippage whose samples each wait ``$RANDS_TEST_SAMPLE_WAIT`` seconds (default 0): a slow
    external simulator that uses no CPU, so a run lasts long enough for a signal to land
    mid-run on a busy machine. The wait is no parameter of the problem (jobs that resume one
    checkpoint may run at different speeds); the outputs are those of :class:`Slippage`."""

    name = "sleepy-slippage"

    def simulate(self, systems, reps, streams):
        _wait(len(systems))
        return super().simulate(systems, reps, streams)


class SleepyFaultySlippage(FaultySlippage):
    """:class:`FaultySlippage` (raises when rank 1 simulates system 0) whose samples wait like
    :class:`SleepySlippage`'s: samples that cost something are shipped to rank 1 (cheap ones
    stay on rank 0, which would then never meet the fault)."""

    name = "sleepy-faulty-slippage"

    def simulate(self, systems, reps, streams):
        _wait(len(systems))
        return super().simulate(systems, reps, streams)


ENTRY_POINTS = {
    "sleepy-slippage": "slurm_problems:SleepySlippage",
    "sleepy-faulty-slippage": "slurm_problems:SleepyFaultySlippage",
}
