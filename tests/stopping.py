"""A checkpointer that asks for a stop at its n-th boundary: a SIGTERM arriving between two
stages (or waves), without sending a signal. Shared by the checkpoint and resume tests."""
from __future__ import annotations

from rands.checkpoint import Checkpointer


class StopAt(Checkpointer):
    """Requests a stop at the ``stop_at``-th boundary."""

    def __init__(self, *a, stop_at: int, **kw):
        super().__init__(*a, **kw)
        self.stop_at, self.seen = stop_at, 0

    def at_boundary(self, ctx, state, force=False):
        self.seen += 1
        if self.seen == self.stop_at:
            self.request_stop()
        super().at_boundary(ctx, state, force)
