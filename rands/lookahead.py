"""How many stages a sequential procedure draws ahead (look-ahead sampling).

Drawing L stages per block costs, per stage, F / L of fixed cost (Python,
the block's screening pass, a round trip to the workers) and about
e * t_s * L / 2 of wasted simulation (e systems eliminated per stage, each
leaving on average L/2 unused samples of t_s seconds). The minimum is the
economic-order-quantity rule L* = sqrt(2 F / (e t_s)), which the policy
evaluates from measured F, e and t_s after every block: cheap samples give long
blocks, a training run per sample gives L = 1. L never changes a decision
(see :mod:`rands.procedures.fixed_precision.kn_engine`), only the samples
simulated.
"""
from __future__ import annotations

import math
import time

MAX_LOOKAHEAD = 256
LARGE_GROUP_LOOKAHEAD = 32
MAX_BLOCK_VALUES = 1 << 23      # 64 MiB of float64 per block
ELIM_FLOOR = 0.05               # eliminations per stage assumed at least (few survivors: long blocks)


class LookaheadPolicy:
    """Stages per block: a fixed ``requested`` value, or the adaptive rule (None).

    The caller brackets each block: :meth:`choose` (starts the block's clock),
    :meth:`drew` (seconds and samples of the block's draw), :meth:`observe`
    (eliminations); F is the block's wall time outside the draw, t_s the draw's
    seconds per sample.
    """

    def __init__(self, requested: int | None, ctx) -> None:
        if requested is not None and (isinstance(requested, bool) or int(requested) < 1):
            raise ValueError(f"lookahead must be an integer >= 1 or None (adaptive), got {requested!r}")
        self.requested = None if requested is None else int(requested)
        self.ctx = ctx
        self._fixed = math.nan       # seconds of non-simulation work per block (EMA)
        self._elim = math.nan        # eliminations per stage (EMA)
        self._t_s = math.nan         # wall seconds per simulated sample in blocks (EMA)
        self._idle = math.nan        # wall seconds per block the workers wait at its barrier (EMA)
        self._t_block = 0.0
        self._t_draw = 0.0

    def choose(self, *, rows: int, max_stages: int, pair_work: float = 0.0) -> int:
        """Stages for the next block of ``rows`` systems (at most ``max_stages``)."""
        rows = max(int(rows), 1)
        if self.requested is not None:
            L = self.requested
        else:
            L = self._adaptive(rows, pair_work)
        L = min(L, max(int(max_stages), 1), max(1, MAX_BLOCK_VALUES // rows))
        left = self.ctx.remaining_budget()
        if left is not None:
            L = min(L, max(1, left // rows))
        self._t_block = time.perf_counter()
        self._t_draw = 0.0
        return max(1, int(L))

    def _adaptive(self, rows: int, pair_work: float) -> int:
        t_s = self._t_s if self._t_s == self._t_s else self.ctx.cost_per_sample()
        if not t_s == t_s or t_s <= 0:
            return 1
        fixed = self._fixed if self._fixed == self._fixed else 1e-3 + 1e-9 * pair_work
        if self._idle == self._idle:      # measured: the workers' wait at each block's barrier
            fixed += self._idle
        else:                             # guess: about one sample per extra worker
            fixed += t_s * max(0, getattr(self.ctx.executor, "n_workers", 1) - 1)
        elim = self._elim if self._elim == self._elim else max(1.0, 0.01 * rows)
        L = math.sqrt(2.0 * fixed / (max(elim, ELIM_FLOOR) * t_s))
        # in large groups the candidate pairs of a block grow faster than L (measured: 32 is best
        # for KN at k = 10^4; 8 and 128 cost 1.4x and 2.6x as much)
        cap = LARGE_GROUP_LOOKAHEAD if pair_work > 0 else MAX_LOOKAHEAD
        return int(min(cap, max(1.0, L)))

    def drew(self, seconds: float, samples: int) -> None:
        """The block's draw took ``seconds`` for ``samples`` samples.

        With p > 1 workers and a measured c seconds of work per sample, the draw would take
        samples c / p if the workers were never idle; the rest is the barrier's idle time,
        a fixed cost per block that longer blocks spread (small blocks of few survivors
        leave workers waiting). The waste term uses the ideal wall time per sample, c / p."""
        self._t_draw += seconds
        if samples <= 0:
            return
        t = seconds / samples
        c = self.ctx.cost_per_sample()
        ships = getattr(self.ctx.executor, "ships", None)     # blocks run on the workers?
        p = max(1, int(getattr(self.ctx.executor, "n_workers", 1))) if ships and ships(samples) else 1
        if p > 1 and c == c and c > 0:
            ideal = min(seconds, samples * c / p)
            idle = seconds - ideal
            self._idle = idle if self._idle != self._idle else 0.5 * self._idle + 0.5 * idle
            t = ideal / samples
        self._t_s = t if self._t_s != self._t_s else 0.5 * self._t_s + 0.5 * t

    def observe(self, *, eliminated: int, stages: int) -> None:
        """Update the estimates after a block of ``stages`` stages."""
        fixed = max(0.0, time.perf_counter() - self._t_block - self._t_draw)
        self._fixed = fixed if self._fixed != self._fixed else 0.5 * self._fixed + 0.5 * fixed
        e = eliminated / max(stages, 1)
        self._elim = e if self._elim != self._elim else 0.5 * self._elim + 0.5 * e
