"""Execution backends: serial, local processes, MPI (imported as ``rands.parallel``).

``make_executor(backend, workers=None, **options)`` returns an executor with the
interface of :class:`rands.sampling.SerialExecutor` (``bind``, ``simulate``,
``map_groups``, ``accounting``, ``close``):

- ``"serial"``: this process;
- ``"processes"``: ``workers`` local processes (default: CPU count);
- ``"mpi"``: under ``mpiexec -n P``, rank 0 gets the coordinator executor;
  ranks >= 1 serve it until it closes and then get ``None`` (the caller exits
  quietly on those ranks). mpi4py is imported only here.

Every backend returns the same numbers: sample (i, r) depends only on
(seed, i, r), and results are assembled in task order. See docs/parallel.md.
"""
from __future__ import annotations

from rands.errors import ParameterError
from rands.sampling import SerialExecutor

BACKENDS = ("serial", "processes", "mpi")


def make_executor(backend: str = "serial", workers: int | None = None, **options):
    """Build the executor for ``backend`` ("serial", "processes" or "mpi").

    Options: processes: ``start_method`` ("forkserver"/"spawn"), ``min_chunk_s``,
    ``chunks_per_worker``, ``depth``; mpi: ``coordinator_simulates`` (default
    True), ``abort_after_s``, and the same scheduling options.
    """
    if backend == "serial":
        if workers not in (None, 1):
            raise ParameterError(f"the serial backend has one worker, got workers={workers}")
        if options:
            raise ParameterError(f"unknown options {sorted(options)} for the serial backend")
        return SerialExecutor()
    if backend == "processes":
        from .processes import ProcessExecutor
        return ProcessExecutor(workers, **options)
    if backend == "mpi":
        from .mpi import make_mpi_executor
        return make_mpi_executor(workers, **options)
    raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def mpi_rank() -> int:
    """This process's MPI rank (0 without MPI or when mpi4py was never imported)."""
    import sys
    if "mpi4py.MPI" not in sys.modules:
        return 0
    return sys.modules["mpi4py.MPI"].COMM_WORLD.Get_rank()


__all__ = ["make_executor", "BACKENDS", "mpi_rank", "SerialExecutor"]
