"""Quality and random-access properties of the counter-based streams."""
import numba
import numpy as np
from scipy import stats

from rands.streams import Streams, generator_for, normal_at, stream_state, uniform_at


@numba.njit
def _fill(key, reps, width, kind):
    out = np.empty((reps.shape[0], width))
    for a in range(reps.shape[0]):
        st = stream_state(key, reps[a])
        for j in range(width):
            out[a, j] = uniform_at(st, j) if kind == 0 else normal_at(st, j)
    return out


def test_uniforms_pass_ks_and_are_uncorrelated():
    # KS p-values over 20 seeds must themselves look uniform (a single p-value can be small by chance)
    pvals = [stats.kstest(_fill(Streams(seed).key_of(3), np.arange(5000), 8, 0).ravel(), "uniform").pvalue
             for seed in range(20)]
    assert min(pvals) > 1e-4
    assert stats.kstest(pvals, "uniform").pvalue > 0.01
    u = _fill(Streams(11).key_of(3), np.arange(20000), 8, 0)
    c = np.corrcoef(u.T)
    assert np.abs(c[np.triu_indices(8, 1)]).max() < 0.03
    # neighbouring replications are uncorrelated too
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.03


def test_normals_match_the_normal_law_including_tails():
    key = Streams(5).key_of(0)
    z = _fill(key, np.arange(100000), 4, 1).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1) < 0.01
    # tail beyond 3.44 (the ziggurat base strip) has the right mass
    tail = (np.abs(z) > 3.5).mean()
    expected = 2 * stats.norm.sf(3.5)
    assert abs(tail - expected) < 4 * np.sqrt(expected / z.size)


def test_streams_differ_by_seed_and_system_and_are_reproducible():
    s1, s2 = Streams(1), Streams(2)
    assert s1.key_of(0) != s2.key_of(0)
    assert s1.key_of(0) != s1.key_of(1)
    assert Streams((1, 2)).key_of(4) == Streams([1, 2]).key_of(4)
    crn = Streams(1, crn=True)
    assert crn.key_of(0) == crn.key_of(99)


def test_generator_for_is_keyed_by_system_and_replication():
    s = Streams(7)
    a = generator_for(s, 2, 5).normal(size=3)
    assert np.array_equal(a, generator_for(s, 2, 5).normal(size=3))
    assert not np.array_equal(a, generator_for(s, 2, 6).normal(size=3))
    assert not np.array_equal(a, generator_for(s, 3, 5).normal(size=3))
    c = Streams(7, crn=True)
    assert np.array_equal(generator_for(c, 2, 5).normal(size=3), generator_for(c, 3, 5).normal(size=3))
