"""Checks made before a run draws its first sample: memory, workers, paths, locks.

* :func:`check_memory` estimates the bytes a run allocates from (k, first-stage
  samples, budget, workers) and refuses a run that cannot fit, naming the estimate
  and this machine's memory (instead of a numpy ``ArrayMemoryError`` deep in a run).
* :func:`check_workers` refuses ``workers`` with the serial backend and more
  processes than CPUs unless ``oversubscribe`` is set.
* :func:`check_writable` makes sure a result or checkpoint can be written (folder
  creatable and writable, no regular file on the way) before the run starts.
* :class:`RunLock` holds an advisory ``fcntl.flock`` lock next to each path a run
  writes, so a second run on the same output or checkpoint is refused with the pid
  of the run that holds it. The lock disappears with its process (the kernel drops
  it), so a killed run never blocks the next one.

Every refusal is a one-line :class:`rands.errors.ParameterError`.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import ParameterError

#: bytes per system held for a whole run: the context's n, sums, sumsq, next_rep (32),
#: the problem's per-system arrays (means, sds, labels: 24) and procedure state
#: (survivor flags, targets, screening copies: about 72)
BYTES_PER_SYSTEM = 128
#: bytes per first-stage sample: the drawn (k x n0) block, its centred copy and one temporary
BYTES_PER_FIRST_STAGE_SAMPLE = 24
#: resident memory of one worker process (Python, numpy, numba) before its problem copy
BYTES_PER_WORKER = 120 * 2**20


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024.0
    return f"{n:.1f} PiB"  # pragma: no cover


def machine_memory() -> tuple[int, int]:
    """(total, available) physical memory in bytes (available = MemAvailable on Linux)."""
    total = available = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key == "MemTotal":
                    total = int(rest.split()[0]) * 1024
                elif key == "MemAvailable":
                    available = int(rest.split()[0]) * 1024
    except OSError:
        pass
    if total == 0:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            total = 0
    return total, available or total


def estimate_memory(k: int, n0: int = 0, budget: int | None = None, workers: int = 0) -> int:
    """Bytes a run of k systems allocates: per-system state, the largest block drawn at once
    (the first stage, min(k*n0, budget) samples, or one system's equal share budget/k of a
    fixed budget, which equal allocation draws in one block), and ``workers`` worker
    processes each holding a problem copy."""
    k, n0 = int(k), int(n0)
    first = k * n0
    if budget is not None:
        first = max(min(first, int(budget)), int(budget) // max(k, 1))
    per_worker = BYTES_PER_WORKER + 24 * k
    return BYTES_PER_SYSTEM * k + BYTES_PER_FIRST_STAGE_SAMPLE * first + int(workers) * per_worker


def first_stage_samples(procedure) -> int:
    """Samples per system a procedure draws for all systems at once (n0, n1 or a pilot)."""
    out = 0
    for name in ("n0", "n1", "pilot"):
        v = getattr(procedure, name, None)
        if isinstance(v, int) and not isinstance(v, bool):
            out = max(out, v)
    return out


def check_memory(k: int, n0: int = 0, budget: int | None = None, workers: int = 0, *,
                 what: str = "the run") -> int:
    """Refuse (ParameterError) when the estimate exceeds this machine's available memory."""
    need = estimate_memory(k, n0, budget, workers)
    total, available = machine_memory()
    if available and need > available:
        parts = [f"{k:,} systems x {BYTES_PER_SYSTEM} B"]
        if n0 or budget:
            block = (need - BYTES_PER_SYSTEM * k - workers * (BYTES_PER_WORKER + 24 * k)) // \
                BYTES_PER_FIRST_STAGE_SAMPLE
            parts.append(f"a block of {block:,} samples (k={k:,}, n0={n0:,}"
                         + (f", budget {budget:,}" if budget else "") + f") x {BYTES_PER_FIRST_STAGE_SAMPLE} B")
        if workers:
            parts.append(f"{workers:,} workers x {_human(BYTES_PER_WORKER + 24 * k)}")
        raise ParameterError(f"{what} needs about {_human(need)} of memory ({' + '.join(parts)}); this "
                             f"machine has {_human(total)} ({_human(available)} available); lower k, n0, "
                             f"the budget or workers")
    return need


def check_workers(backend: str, workers: int | None, oversubscribe: bool = False) -> None:
    """``workers`` only with a parallel backend; processes above the CPU count need oversubscribe."""
    if backend in (None, "serial"):
        if workers not in (None, 1):
            raise ParameterError(f"[run] workers={workers} needs backend = 'processes' or 'mpi'; the "
                                 "serial backend runs in this process (remove workers or set backend)")
        return
    if backend == "processes" and workers is not None:
        cpus = os.cpu_count() or 1
        if workers > cpus and not oversubscribe:
            raise ParameterError(f"[run] workers={workers:,} exceeds this machine's {cpus} CPUs; set "
                                 f"oversubscribe = true to run more processes than CPUs")


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """The absolute path after checking a file can be written there (creating its folder).

    Refuses a path that is a folder, lies under a regular file, or whose folder cannot
    be created or written (a test file is created and removed).
    """
    p = Path(os.fspath(path)).expanduser()
    absolute = Path(os.path.abspath(p))
    if absolute.is_dir():
        raise ParameterError(f"{what} {str(path)!r} is a folder; give a file path")
    ancestor = absolute.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ParameterError(f"{what} {str(path)!r} cannot be written: {str(ancestor)!r} on its path is "
                             "a regular file, not a folder")
    try:
        absolute.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".rands-write-test-", dir=absolute.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ParameterError(f"{what} {str(path)!r} cannot be written: folder {str(absolute.parent)!r}: "
                             f"{exc.strerror or exc}") from None
    if absolute.exists() and not os.access(absolute, os.W_OK):
        raise ParameterError(f"{what} {str(path)!r} exists and is not writable")
    return absolute


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of ``path``: ``.<name>.lock`` in the same folder."""
    p = Path(os.path.abspath(os.fspath(path)))
    return p.with_name(f".{p.name}.lock")


class RunLock:
    """Advisory exclusive locks (``fcntl.flock``) on the files one run writes.

    ``with RunLock({"checkpoint": path, "output": path2}):`` refuses, with the holder's
    pid, when another live process holds any of them; the lock files are removed on exit.
    """

    def __init__(self, paths: dict[str, str | os.PathLike | None]) -> None:
        seen: dict[Path, str] = {}
        for what, path in paths.items():
            if path:
                seen.setdefault(Path(os.path.abspath(os.fspath(path))), what)
        self.paths = [(what, p) for p, what in seen.items()]
        self._held: list[tuple[int, Path]] = []

    def acquire(self) -> "RunLock":
        import fcntl
        try:
            for what, path in self.paths:
                lp = lock_path(path)
                while True:
                    fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        pid = ""
                        with contextlib.suppress(OSError):
                            pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
                        os.close(fd)
                        raise ParameterError(f"{what} {str(path)!r} is in use by another rands run (pid "
                                             f"{pid or 'unknown'}); wait for it to end or choose another "
                                             f"path") from None
                    # the holder may have removed the file between our open and lock: retry
                    try:
                        same = os.stat(lp).st_ino == os.fstat(fd).st_ino
                    except FileNotFoundError:
                        same = False
                    if same:
                        break
                    os.close(fd)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._held.append((fd, lp))
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        while self._held:
            fd, lp = self._held.pop()
            with contextlib.suppress(OSError):
                os.unlink(lp)
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def outside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` resolves outside ``folder``."""
    p = Path(os.path.realpath(os.fspath(path)))
    f = Path(os.path.realpath(os.fspath(folder)))
    return f != p and f not in p.parents


__all__ = ["check_memory", "estimate_memory", "machine_memory", "first_stage_samples", "check_workers",
           "check_writable", "RunLock", "lock_path", "outside"]

