import numpy as np
import pytest

import rands
from rands.errors import ParameterError, SimulationError
from rands.streams import Streams


def test_streams_random_access_and_crn():
    prob = rands.problems.make("slippage", k=5, rho=0.5)
    s = Streams(3)
    a = prob.simulate(np.array([0, 1, 2]), np.array([7, 7, 7]), s)
    b = prob.simulate(np.array([2, 1, 0]), np.array([7, 7, 7]), s)
    assert np.array_equal(a, b[::-1])
    crn = Streams(3, crn=True)
    x = prob.simulate(np.repeat(np.arange(5), 4000), np.tile(np.arange(4000), 5), crn).reshape(5, -1)
    c = np.corrcoef(x)
    assert abs(c[1, 2] - 0.5) < 0.06
    ind = prob.simulate(np.repeat(np.arange(5), 4000), np.tile(np.arange(4000), 5), s).reshape(5, -1)
    assert abs(np.corrcoef(ind)[1, 2]) < 0.06


def test_normal_moments():
    prob = rands.problems.make("mdm", k=3, delta=0.5, sigma=2.0)
    x = prob.simulate(np.repeat(np.arange(3), 20000), np.tile(np.arange(20000), 3), Streams(1)).reshape(3, -1)
    assert np.allclose(x.mean(1), [0, -0.5, -1.0], atol=0.05)
    assert np.allclose(x.std(1), 2.0, atol=0.05)


def test_seed_must_not_be_negative():
    with pytest.raises(ValueError, match="seed"):
        Streams(-1)


def test_unknown_names():
    with pytest.raises(ParameterError, match="unknown problem 'nope'"):
        rands.problems.make("nope")
    with pytest.raises(ParameterError, match="unknown procedure 'nope'"):
        rands.select("slippage", "nope", seed=0)


def test_from_function_errors_name_system_and_replication():
    def f(i, rng):
        if i == 2:
            return float("nan")
        return rng.normal()

    with pytest.raises(SimulationError, match=r"system 2, replication 0"):
        rands.select(rands.problems.from_function(f, 4), "equal", seed=0, budget=40)

    def g(i, rng):
        if i == 1:
            raise RuntimeError("boom")
        return 0.0

    with pytest.raises(SimulationError, match=r"boom.*system 1, replication 0"):
        rands.select(rands.problems.from_function(g, 3), "equal", seed=0, budget=30)


def test_equal_allocation_result_record():
    r = rands.select("slippage", "equal", seed=5, problem_params={"k": 4}, budget=40)
    d = r.to_dict()
    assert d["total_samples"] == 40 and d["sample_sizes"] == [10] * 4
    assert rands.SelectionResult.from_dict(d).best == r.best
