"""Checkpoints: statistics, stream positions and procedure state in one NPZ file.

A :class:`Checkpointer` is given to the sampling context. The context calls
:meth:`Checkpointer.restore` when it is built (a resumed run gets its
statistics back and the procedure's last boundary state in ``ctx.restored``)
and :meth:`Checkpointer.at_boundary` at every stage boundary. A checkpoint is
written there when forced, when ``interval_s`` has passed since the last write,
or when a stop was requested (SIGTERM under :meth:`handle_signals`); after a
write on a stop request the run raises :class:`rands.errors.Interrupted`.

File format (NPZ, ``allow_pickle=False``): context arrays ``ctx__n``,
``ctx__sums``, ``ctx__sumsq``, ``ctx__next_rep``; procedure state arrays
``state__<name>``; one string array ``meta`` holding JSON (format version,
run spec, total samples, trace, wall time so far, scalar state values); one
string array ``sha256``, the SHA-256 of every other array (name, dtype, shape
and bytes, in name order). A restore verifies the hash, the JSON, the arrays
and their dtypes and shapes before touching the context; a file that fails
is refused as :class:`CheckpointDamaged` ("checkpoint X is damaged: ...;
delete it to start over"), never resumed. Writes are atomic: a temporary file in the same folder, then ``os.replace``.
Because sample (i, r) depends only on (seed, i, r) and the replication index
of every system is saved, a resumed run draws exactly the samples the
uninterrupted run would have drawn.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import tempfile
import threading
import time
from typing import Any, Iterator

import numpy as np

from .errors import Interrupted, ParameterError

FORMAT = "rands-checkpoint/1"
_CTX_FIELDS = ("n", "sums", "sumsq", "next_rep")
_CTX_DTYPES = {"n": np.int64, "sums": np.float64, "sumsq": np.float64, "next_rep": np.int64}
_META_KEYS = {"format": str, "run_spec": dict, "total": int, "trace": list, "wall_time": (int, float),
              "scalars": dict}


class CheckpointDamaged(ParameterError):
    """A checkpoint file that fails its integrity checks (hash, JSON, arrays, dtypes)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"checkpoint {path} is damaged: {reason}; delete it to start over")
        self.path = path
        self.reason = reason


def digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) over the arrays except ``sha256``: name, dtype, shape and bytes, by name."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == "sha256":
            continue
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + b"\0" + a.dtype.str.encode() + b"\0" + repr(a.shape).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


def _normalise(spec: Any) -> Any:
    """The JSON form of a run spec (tuples become lists, numpy scalars plain)."""
    return json.loads(json.dumps(spec, default=_json_default, sort_keys=True))


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"run spec value {x!r} is not JSON-serialisable")


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(prefix + k)
            else:
                out += _diff_keys(a[k], b[k], prefix + k + ".")
        return out
    return [] if a == b else [prefix.rstrip(".") or "<spec>"]


class Checkpointer:
    """Writes and restores the checkpoint of one run.

    Parameters
    ----------
    path : the NPZ file (created with its folder on first write).
    run_spec : what defines the run (problem, procedure and its parameters,
        seed, ...); a resume refuses a checkpoint written for another spec.
    interval_s : at least this often (seconds) a boundary writes a checkpoint.
    """

    def __init__(self, path: str | os.PathLike, run_spec: dict, interval_s: float = 120.0) -> None:
        self.path = os.fspath(path)
        if not isinstance(run_spec, dict):
            raise ParameterError(f"run_spec must be a dict, got {type(run_spec).__name__}")
        self.run_spec = _normalise(run_spec)
        if not (isinstance(interval_s, (int, float)) and interval_s >= 0):
            raise ParameterError(f"interval_s must be a number >= 0 seconds, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self.previous_wall_time = 0.0
        self.stop_requested = False
        self.writes = 0
        self._t_start = time.perf_counter()
        self._last_write = time.perf_counter()

    # ------------------------------------------------------------------ state
    def exists(self) -> bool:
        return os.path.exists(self.path)

    def request_stop(self) -> None:
        """Ask the run to write a checkpoint and stop at its next stage boundary."""
        self.stop_requested = True

    @contextlib.contextmanager
    def handle_signals(self, signals: tuple = (signal.SIGTERM,)) -> Iterator["Checkpointer"]:
        """While inside, SIGTERM (Slurm's time-limit signal) requests a stop instead of killing."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {}

        def handler(signum, frame) -> None:  # noqa: ARG001
            self.stop_requested = True

        for s in signals:
            previous[s] = signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    # ------------------------------------------------------------------ restore
    def restore(self, ctx) -> dict | None:
        """Load the checkpoint into ``ctx``; returns the procedure state, or None on a fresh run."""
        self._t_start = time.perf_counter()
        self._last_write = time.perf_counter()
        if not self.exists():
            self.previous_wall_time = 0.0
            return None
        arrays, meta = self.load_verified()
        saved_spec = meta["run_spec"]
        if saved_spec != self.run_spec:
            keys = _diff_keys(saved_spec, self.run_spec)
            raise ParameterError(f"checkpoint {self.path} was written for another run (differs in "
                                 f"{', '.join(keys)}); use the same configuration to resume, or delete "
                                 "the checkpoint to start afresh")
        k = ctx.k
        for f in _CTX_FIELDS:
            a = arrays[f"ctx__{f}"]
            if a.shape != (k,):
                raise ParameterError(f"checkpoint {self.path} holds {a.shape[0] if a.ndim else 0} systems, "
                                     f"the run has {k}")
        stats = {f: arrays[f"ctx__{f}"] for f in _CTX_FIELDS}
        if hasattr(ctx, "restore_stats"):     # the context keeps its statistics in a SampleStats
            from .sampling import SampleStats
            ctx.restore_stats(SampleStats.from_dict({**stats, "total": int(meta["total"]),
                                                     "simulated": int(meta.get("simulated", meta["total"]))}))
        else:
            for f in _CTX_FIELDS:
                getattr(ctx, f)[...] = stats[f]
            ctx.total = int(meta["total"])
        ctx.trace = list(meta["trace"])
        self.previous_wall_time = float(meta["wall_time"])
        state: dict[str, Any] = {}
        for key, a in arrays.items():
            if key.startswith("state__"):
                state[key[len("state__"):]] = a
        state.update(meta["scalars"])
        return state

    def verify(self) -> dict | None:
        """Check an existing checkpoint before a resume starts anything: integrity and run spec.
        Returns its metadata (``total``: samples used so far, ...), or None when there is none."""
        if not self.exists():
            return None
        _, meta = self.load_verified()
        if meta["run_spec"] != self.run_spec:
            keys = _diff_keys(meta["run_spec"], self.run_spec)
            raise ParameterError(f"checkpoint {self.path} was written for another run (differs in "
                                 f"{', '.join(keys)}); use the same configuration to resume, or delete "
                                 "the checkpoint to start afresh")
        return meta

    def load_verified(self) -> tuple[dict[str, np.ndarray], dict]:
        """The checkpoint's arrays and meta after every integrity check; raises CheckpointDamaged."""
        def damaged(reason: str) -> CheckpointDamaged:
            return CheckpointDamaged(self.path, reason)

        try:
            data = np.load(self.path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise damaged("it holds one array, not a rands NPZ archive")
            with data:
                arrays = {k: data[k] for k in data.files}
        except CheckpointDamaged:
            raise
        except Exception as exc:  # noqa: BLE001  (zip, zlib, pickle refusal, format errors)
            raise damaged(f"it cannot be read as an NPZ archive ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        for name in ("meta", "sha256"):
            if name not in arrays:
                raise damaged(f"the {name!r} array is missing")
            if arrays[name].dtype.kind != "U" or arrays[name].shape != ():
                raise damaged(f"the {name!r} array is not one string")
        if str(arrays["sha256"][()]) != digest(arrays):
            raise damaged("its SHA-256 does not match its contents (edited or truncated)")
        try:
            meta = json.loads(str(arrays["meta"][()]))
        except ValueError as exc:
            raise damaged(f"its metadata is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise damaged("its metadata is not a JSON object")
        if meta.get("format") != FORMAT:
            raise damaged(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        for key, typ in _META_KEYS.items():
            if key not in meta:
                raise damaged(f"metadata key {key!r} is missing")
            if not isinstance(meta[key], typ) or isinstance(meta[key], bool):
                raise damaged(f"metadata key {key!r} has the wrong type ({type(meta[key]).__name__})")
        for f in _CTX_FIELDS:
            name = f"ctx__{f}"
            if name not in arrays:
                raise damaged(f"the array {name!r} is missing")
            a = arrays[name]
            if a.dtype != _CTX_DTYPES[f] or a.ndim != 1:
                raise damaged(f"the array {name!r} is {a.dtype}[{a.ndim}-d], expected a 1-d "
                              f"{np.dtype(_CTX_DTYPES[f])} array")
        shapes = {arrays[f"ctx__{f}"].shape for f in _CTX_FIELDS}
        if len(shapes) != 1:
            raise damaged(f"the context arrays have different lengths {sorted(shapes)}")
        for name, a in arrays.items():
            if name.startswith("state__") and a.dtype.kind not in "biufU":
                raise damaged(f"the state array {name!r} has dtype {a.dtype}")
        return arrays, meta

    # ------------------------------------------------------------------ write
    def at_boundary(self, ctx, state: dict, force: bool = False) -> None:
        """Called by the context at a stage boundary; writes when due, stops when asked."""
        due = force or self.stop_requested or (time.perf_counter() - self._last_write >= self.interval_s)
        if not due:
            return
        self.write(ctx, state)
        if self.stop_requested:
            raise Interrupted(self.path)

    def elapsed(self) -> float:
        """Wall time of the run including the time before a resume."""
        return self.previous_wall_time + (time.perf_counter() - self._t_start)

    def write(self, ctx, state: dict) -> None:
        """Write the checkpoint now (atomically)."""
        arrays: dict[str, np.ndarray] = {f"ctx__{f}": np.asarray(getattr(ctx, f)) for f in _CTX_FIELDS}
        scalars: dict[str, Any] = {}
        for key, v in state.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise ParameterError(f"procedure state keys must be identifiers, got {key!r}")
            if isinstance(v, np.ndarray):
                if v.dtype == object:
                    raise ParameterError(f"procedure state {key!r} is an object array; use numeric arrays")
                arrays[f"state__{key}"] = v
            elif isinstance(v, (np.generic, bool, int, float, str)) or v is None:
                scalars[key] = v.item() if isinstance(v, np.generic) else v
            else:
                raise ParameterError(f"procedure state {key!r} must be a numpy array or a scalar, "
                                     f"got {type(v).__name__}")
        meta = {"format": FORMAT, "run_spec": self.run_spec, "total": int(ctx.total),
                "simulated": int(getattr(ctx, "simulated", ctx.total)),
                "trace": _normalise(ctx.trace), "wall_time": self.elapsed(), "scalars": scalars,
                "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        arrays["meta"] = np.array(json.dumps(meta))
        arrays["sha256"] = np.array(digest(arrays))
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._last_write = time.perf_counter()
        self.writes += 1

    def remove(self) -> None:
        """Delete the checkpoint (after a run has finished, if the caller wants)."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


class StopGuard:
    """SIGTERM policy of a whole run, from before its workers start until they are gone.

    The first SIGTERM asks the checkpointer to stop at the next stage boundary (a checkpoint
    is written, then :class:`Interrupted`), or, with no checkpointer, raises
    :class:`Interrupted` at once while ``armed``. Every later SIGTERM is only counted: a
    checkpoint being written is finished, workers are stopped and joined, locks released,
    so a second signal never kills the run half-way (leaked semaphores, a forkserver left).
    """

    def __init__(self, checkpointer: "Checkpointer | None") -> None:
        self.checkpointer = checkpointer
        self.armed = True           # False once the result exists: then a signal only counts
        self.received = 0

    def __call__(self, signum, frame) -> None:  # noqa: ARG002
        self.received += 1
        if self.received > 1:
            return
        if self.checkpointer is not None:
            self.checkpointer.request_stop()
        elif self.armed:
            raise Interrupted(None)


@contextlib.contextmanager
def stop_guard(checkpointer: "Checkpointer | None") -> Iterator[StopGuard]:
    """Install a :class:`StopGuard` for SIGTERM (main thread only) while inside."""
    guard = StopGuard(checkpointer)
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = signal.signal(signal.SIGTERM, guard)
    try:
        yield guard
    finally:
        # after a SIGTERM the process is on its way out (exit code 3): a later one must not kill
        # it between here and the exit (default action) any more than inside
        signal.signal(signal.SIGTERM, signal.SIG_IGN if guard.received else previous)


__all__ = ["Checkpointer", "CheckpointDamaged", "FORMAT", "digest", "StopGuard", "stop_guard"]
