"""Imported by the forkserver (``set_forkserver_preload``) when workers are warm.

Loading the compiled kernels here, once, means every worker forked from the
forkserver starts with them loaded: the coordinator and the forkserver warm up
side by side instead of three processes competing for the cores. The kernels
use no threading layer, so forking after they are loaded is safe.
"""
from rands.warmup import warm_kernels

WARMUP_S = warm_kernels()
