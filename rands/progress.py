"""A progress bar for selections, with a total and an ETA for every procedure.

The sampling context calls ``progress(total, **info)`` with ``total`` the samples
used so far and, when known, ``info["contention"]`` (systems still in contention),
``info["estimate"]`` (running estimate of the total samples the run will use, e.g.
from first-stage variances), ``info["remaining"]`` (the same as samples still to come,
so a sub-context need not know its parent's count: estimate = total + remaining)
and ``info["simulated"]`` (samples simulated, which a procedure drawing ahead may
have more of than it used). :func:`kn_remaining` is the running estimate of the KN
matches (KN, KT, DC, P3C); Rinott, GSP and PASS report theirs from first-stage variances. :class:`ProgressBar` takes
exactly that and tolerates any key missing. A fixed-budget procedure's total is its
budget; a fixed-precision procedure's total is the latest ``estimate`` (the bar
shows samples and contention, without a percentage, until one arrives).

Under MPI only rank 0 draws: :func:`launcher_rank` reads the rank the launcher
(MPICH/Hydra, Open MPI, PMIx) put in the environment, so no MPI import is needed.
"""
from __future__ import annotations

import io
import os
import sys
from typing import Any, TextIO

import numpy as np

__all__ = ["ProgressBar", "kn_remaining", "launcher_rank", "launcher_size"]

_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MPI_RANK")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_UNIVERSE_SIZE")


def _env_int(names: tuple[str, ...]) -> int | None:
    for name in names:
        value = os.environ.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return None


def launcher_rank() -> int:
    """This process's rank under an MPI launcher (0 when not launched by one)."""
    return _env_int(_RANK_VARS) or 0


def launcher_size() -> int:
    """Number of processes the MPI launcher started (1 when not launched by one)."""
    return _env_int(_SIZE_VARS) or 1


def _width(stream) -> int | None:
    """None (let tqdm follow the terminal) unless the stream is a terminal reporting 0 columns."""
    try:
        cols = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return None if cols > 0 else int(os.environ.get("COLUMNS", "100") or 100)


class ProgressBar:
    """A tqdm bar driven by ``bar(total, contention=..., estimate=..., simulated=...)``.

    Parameters
    ----------
    total : the run's known total (a fixed budget), or None to follow ``estimate``.
    desc : label in front of the bar (the procedure's name).
    file : stream to draw on (stderr by default).
    disable : draw nothing (the callable still accepts every call).
    mininterval : seconds between redraws (tqdm's).

    Guarantees: the bar's count is the latest ``total`` (never double-counted);
    its total never falls below the count (an estimate that is already exceeded
    is raised to the count); calling after :meth:`close` is harmless.
    """

    def __init__(self, total: int | None = None, *, desc: str = "", file: TextIO | None = None,
                 disable: bool = False, mininterval: float = 0.2, unit: str = "samples") -> None:
        from tqdm.auto import tqdm

        self.fixed_total = None if total is None else int(total)
        self.contention: int | None = None
        self.estimate: float | None = None
        self.simulated: int | None = None
        self.count = 0
        stream = file if file is not None else sys.stderr
        width = _width(stream)     # a terminal reporting a 0 x 0 size (a bare pty) gets 100 x 24
        self._bar = tqdm(total=self.fixed_total, desc=desc, unit=unit, unit_scale=True,
                         file=stream, disable=disable, leave=False, mininterval=mininterval,
                         dynamic_ncols=width is None, ncols=width, nrows=None if width is None else 24)

    @property
    def total(self) -> int | None:
        """The total the bar measures against (None while unknown)."""
        return self._bar.total

    def __call__(self, total: int, **info: Any) -> None:
        total = int(total)
        contention = info.get("contention")
        estimate = info.get("estimate")
        if estimate is None and info.get("remaining") is not None:
            estimate = total + float(info["remaining"])
        simulated = info.get("simulated")
        if contention is not None:
            self.contention = int(contention)
        if simulated is not None:
            self.simulated = int(simulated)
        if estimate is not None and self.fixed_total is None:
            self.estimate = float(estimate)
        target = self.fixed_total
        if target is None and self.estimate is not None:
            target = max(int(round(self.estimate)), total)
        elif target is not None:
            target = max(target, total)
        if target != self._bar.total:
            first = self._bar.total is None
            self._bar.total = target
            if first:                        # the first known total: show 0% now, not "?"
                self._bar.refresh()
        postfix = {}
        if self.contention is not None:
            postfix["contention"] = self.contention
        if self.simulated is not None and self.simulated != total:
            postfix["simulated"] = self.simulated
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        delta = total - self.count
        self.count = total
        if delta >= 0:
            self._bar.update(delta)          # redraws at most every mininterval
        else:
            self._bar.n = total
            self._bar.refresh()

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def kn_remaining(m, delta: float, n0: int) -> int:
    """Running estimate of the samples the open KN matches ``m`` (a ``KNMatches``) still take.

    In a match whose leader b has the largest sum, survivor i (first-stage variance
    S^2 of X_i - X_b, estimated gap d = (sum_b - sum_i) / r >= 0) leaves the continuation
    region when r d > h^2 S^2 / (2 delta) - delta r / 2, i.e. near
    r_i = h^2 S^2 / (delta (2 d + delta)), capped at the match's r_close; the leader
    stays until its last rival leaves. Returns sum over survivors of (r_i - r). With d
    re-estimated at every block, the estimate firms up as the run goes.
    """
    match_of = np.repeat(np.arange(m.n_matches), np.diff(m.ptr))
    act = np.flatnonzero(m.alive & m.open[match_of])
    if act.size == 0:
        return 0
    g = match_of[act]
    sums = m.sums[act]
    order = np.lexsort((-sums, g))                 # by match, largest sum first
    head = np.ones(act.size, dtype=bool)
    head[1:] = g[order][1:] != g[order][:-1]
    leader = np.zeros(m.n_matches, dtype=np.int64)
    leader[g[order][head]] = act[order][head]
    b = leader[g]
    r = m.r[g].astype(np.float64)
    diff = m.c[act] - m.c[b]
    s2 = np.einsum("ij,ij->i", diff, diff) / (n0 - 1)
    gap = np.maximum(m.sums[b] - sums, 0.0) / r
    stop = np.clip(m.h2[g] * s2 / (delta * (2.0 * gap + delta)), r, m.r_close[g])
    last = np.zeros(m.n_matches)
    np.maximum.at(last, g, np.where(act == b, 0.0, stop))
    stop = np.where(act == b, np.maximum(last[g], r), stop)
    return int(round(float((stop - r).sum())))
