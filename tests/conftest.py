"""Shared test fixtures."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def slurm():
    """A private one-node Slurm (tests/slurm_cluster.py), started once per session; skips
    with the reason when Slurm is not installed. At the end it must leave no job and no
    process behind."""
    from slurm_cluster import SlurmCluster, have_slurm
    reason = have_slurm()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster().start()
    try:
        yield cluster
    finally:
        left = cluster.stop()
    assert not left, f"the private Slurm left work behind: {left} (logs in {cluster.log})"
    import shutil
    shutil.rmtree(cluster.root, ignore_errors=True)
