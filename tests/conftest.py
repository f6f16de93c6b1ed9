"""Shared test fixtures and the one place that marks MPI, torch and slow tests.

Markers (declared in pyproject.toml; the default run is ``-m 'not slow'``):

- ``slow``: the long statistical studies listed in SLOW, by test name;
- ``torch``: every test of a module that imports torch;
- ``mpi``: the tests in MPI_TESTS and every case parametrized with an "mpi"/"mpiexec" backend;
  skipped, with the reason, where mpiexec or mpi4py is missing.

``pytest -m "not torch and not mpi"`` therefore runs the engine suite on a machine without
either.
"""
from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
from scipy.stats import binom

import rands
from rands.streams import Streams

SLOW = {"test_pcs_1000_macroreps", "test_gsp_pgs_1000_macroreps"}
MPI_TESTS = {"test_mpi_sharded_clusters_identical_on_1_2_3_ranks", "test_same_result_under_mpiexec_2",
             "test_p3c_under_mpi_3_ranks_equals_serial", "test_mpi_pool_executor_bit_identical",
             "test_mpi_bit_identical", "test_mpi_fault_stops_quickly",
             "test_serial_backend_under_mpi_runs_on_rank_zero_only", "test_mpiexec_serial_prints_once"}
HAVE_MPI = shutil.which("mpiexec") is not None and importlib.util.find_spec("mpi4py") is not None
SEEDS = (0, 1, 2)


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = getattr(item, "originalname", item.name)
        if name in SLOW:
            item.add_marker(pytest.mark.slow)
        module = getattr(item, "module", None)
        if module is not None and "torch" in vars(module):
            item.add_marker(pytest.mark.torch)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if name in MPI_TESTS or any(isinstance(v, str) and v in ("mpi", "mpiexec") for v in params.values()):
            item.add_marker(pytest.mark.mpi)
            if not HAVE_MPI:
                item.add_marker(pytest.mark.skip(reason="needs mpiexec and mpi4py"))


# --------------------------------------------------------------------------- seeds and samples
@pytest.fixture(params=SEEDS)
def seed(request):
    """A few fixed seeds: a test taking ``seed`` runs once per seed."""
    return request.param


def draw_samples(problem, seed, crn: bool, n: int) -> np.ndarray:
    """The seed contract: sample (i, r) of ``problem`` under ``seed`` for r = 0..n-1, as a
    (k, n) array, straight from the problem's streams (no procedure, no context)."""
    k = problem.k
    systems = np.repeat(np.arange(k), n)
    reps = np.tile(np.arange(n), k)
    return problem.simulate(systems, reps, Streams(seed, crn=crn)).reshape(k, n)


def kn_reference(x, n_p, n0, alpha, delta, c=1):
    """KN (Kim & Nelson 2001), one stage at a time, from the formulas: x (k, R) CRN samples
    (column r = replication r); sums start over replications 0..n_p+n0-1 (n_p > 0: a head
    start), S_il^2 and h^2 from the n0 fresh ones (n_p..n_p+n0-1) only; i is eliminated when
    sum_l - sum_i > max(0, h^2 S_il^2 / (2 c delta) - delta r / (2 c)), h^2 = kn_h2(k, alpha,
    n0, c). Returns (winner, samples per system)."""
    from rands.procedures.fixed_precision.constants import kn_h2
    k = x.shape[0]
    fresh = x[:, n_p:n_p + n0]
    cen = fresh - fresh.mean(axis=1, keepdims=True)
    s2 = ((cen[:, None, :] - cen[None, :, :]) ** 2).sum(axis=2) / (n0 - 1)
    h2 = kn_h2(k, alpha, n0, c)
    r_close = np.floor(h2 * 4.0 * (cen * cen).sum(axis=1).max() / (n0 - 1) / delta ** 2) + 1
    r = n_p + n0
    alive = np.ones(k, dtype=bool)
    n = np.full(k, r)
    sums = x[:, :r].sum(axis=1)
    while True:
        thr = np.maximum(0.0, h2 * s2 / (2 * c * delta) - delta * r / (2 * c))
        beaten = (sums[None, :] - sums[:, None] > thr) & alive[None, :] & ~np.eye(k, dtype=bool)
        alive &= ~beaten.any(axis=1)
        if alive.sum() <= 1 or r >= r_close:
            break
        sums[alive] += x[alive, r]
        n[alive] += 1
        r += 1
    live = np.flatnonzero(alive)
    return int(live[np.argmax(sums[live])]), n


@pytest.fixture
def samples():
    """:func:`draw_samples` (samples (i, r) recomputed from (seed, i, r))."""
    return draw_samples


# --------------------------------------------------------------------------- small problems
@pytest.fixture
def slippage6():
    """Six normal systems, the best ahead by delta = 0.5, unit variances."""
    return rands.problems.make("slippage", k=6, delta=0.5, sigma=1.0)


@pytest.fixture
def best_last():
    """k systems at 0 and the last at 5: every match has an unmistakable winner, not first."""
    return lambda k: rands.problems.make("normal", means=[0.0] * (k - 1) + [5.0])


# --------------------------------------------------------------------------- backends
@pytest.fixture(scope="session")
def _process_pool():
    from rands.parallel import make_executor
    ex = make_executor("processes", 2, local_threshold_s=0.0, min_ship_cost_s=0.0)
    ex.group_ship_threshold_s = 0.0          # every group shipped, even cheap ones
    yield ex
    ex.close()


@pytest.fixture(params=["serial", "processes"])
def executor(request):
    """The serial executor (None: rands' default) and a 2-worker process pool that ships every
    block and every group to its workers."""
    return None if request.param == "serial" else request.getfixturevalue("_process_pool")


# --------------------------------------------------------------------------- statistical tests
def pcs_design(p0: float, p_bad: float = 0.90, false_alarm: float = 0.001,
               power: float = 0.99) -> tuple[int, int]:
    """Fewest macroreplications n, and the pass threshold c (pass iff correct selections
    X >= c), such that with X ~ Binomial(n, p): P(X < c | p0) <= ``false_alarm`` (the nominal
    level passes with probability >= 0.999) and P(X < c | p_bad) >= ``power`` (a true PCS of
    0.90 fails with probability >= 0.99). Exact binomial tails (scipy.stats.binom)."""
    for n in range(10, 5000):
        c = int(binom.ppf(false_alarm, n, p0))         # smallest c with cdf(c) >= false_alarm
        while c > 0 and binom.cdf(c - 1, n, p0) > false_alarm:
            c -= 1
        if binom.cdf(c - 1, n, p_bad) >= power:
            return n, c
    raise ValueError("no design below 5000 macroreplications")


@pytest.fixture
def pcs_test():
    """:func:`pcs_design`."""
    return pcs_design


# --------------------------------------------------------------------------- Slurm
@pytest.fixture(scope="session")
def slurm_cluster(request):
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
    if request.session.testsfailed:
        print(f"\nthe private Slurm's logs are kept in {cluster.log}")
        return
    import shutil
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def slurm(slurm_cluster):
    """The session's Slurm for one test. Jobs the test leaves behind (it failed half-way) are
    cancelled after it, so that they cannot hold the node's CPUs for the next tests."""
    yield slurm_cluster
    left = slurm_cluster.cancel_all()
    assert not left, f"the test left Slurm jobs behind (cancelled them): {left}"
