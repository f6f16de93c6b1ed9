"""Execution backends: serial, local processes, MPI (imported as rands.parallel)."""
