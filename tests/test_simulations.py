"""Tests of the simulation problems: FlowLine (TPMax) and Inventory ((s, S), Koenig & Law)."""
from __future__ import annotations

import numpy as np
import pytest

import rands
from rands.errors import ParameterError
from rands.problems.flowline import FlowLine, flowline_alternatives, line_departures
from rands.problems.inventory import Inventory, _poisson_cdf_table, _poisson_inv
from rands.streams import Streams


# --------------------------------------------------------------------------- FlowLine: alternatives
@pytest.mark.parametrize("L,count", [(20, 3249), (50, 57624), (3, 2), (4, 9)])
def test_flowline_alternative_count_and_constraints(L, count):
    rates, buffers = flowline_alternatives(L)
    assert rates.shape == (count, 3) and buffers.shape == (count, 2)
    assert count == (L - 1) ** 2 * (L - 2) // 2
    assert np.all(rates >= 1) and np.all(buffers >= 1)
    assert np.all(rates.sum(1) == L) and np.all(buffers.sum(1) == L)
    rows = np.concatenate([rates, buffers], axis=1)
    assert np.unique(rows, axis=0).shape[0] == count


def test_flowline_order_matches_pypprs_loops():
    # documented order: s1 outer, s2 next, b2 innermost
    L = 7
    expected = [(s1, s2, L - s1 - s2, b2, L - b2)
                for s1 in range(1, L - 1) for s2 in range(1, L - s1) for b2 in range(1, L)]
    rates, buffers = flowline_alternatives(L)
    got = [tuple(int(v) for v in r) + tuple(int(v) for v in b) for r, b in zip(rates, buffers)]
    assert got == expected


@pytest.mark.parametrize("L", [5, 20, 50])
def test_flowline_labels_round_trip(L):
    p = FlowLine(L=L)
    for i in range(p.k):
        lab = p.label(i)
        assert p.index_of(lab) == i
        assert p.index_of(p.rates[i], p.buffers[i]) == i
    assert FlowLine(L=50).label(0) == "(1,1,48|1,49)"


def test_flowline_parameter_errors():
    with pytest.raises(ParameterError, match="L"):
        FlowLine(L=2)
    with pytest.raises(ParameterError, match="buffer_convention"):
        FlowLine(buffer_convention="spaces")
    with pytest.raises(ParameterError, match="jobs"):
        FlowLine(jobs=0)
    p = FlowLine(L=5)
    with pytest.raises(ParameterError, match="s1\\+s2\\+s3"):
        p.index_of("(1,1,1|2,3)")
    with pytest.raises(ParameterError, match="label"):
        p.index_of("1,1,3|2,3")
    with pytest.raises(ParameterError, match="systems"):
        p.simulate(np.array([p.k]), np.array([0]), Streams(0))
    assert isinstance(rands.problems.make("flowline", L=5), FlowLine)


# --------------------------------------------------------------------------- FlowLine: recursion
def test_flowline_hand_computed_schedule():
    # 3 jobs; station 2 is slow for job 1. Hand-derived (see comments) departure times.
    svc = np.array([[1.0, 1.0, 1.0],
                    [3.0, 1.0, 1.0],
                    [1.0, 1.0, 1.0]])
    # capacity convention, b2 = b3 = 1: each station holds only the job in service.
    # job1: st1 0-1, st2 1-4, st3 4-5. job2: st1 1-2, blocked until 4; st2 4-5; st3 5-6.
    # job3: st1 4-5 (server freed at 4); st2 5-6; st3 6-7.
    d = line_departures(svc, 1, 1, False)
    assert np.allclose(d, [[1, 4, 5], [4, 5, 6], [5, 6, 7]])
    # waiting convention, one waiting place in front of stations 2 and 3:
    # job2 leaves st1 at 2 and waits; job3 done at 3 but st2 full (job1 + job2) until 4.
    d = line_departures(svc, 1, 1, True)
    assert np.allclose(d, [[1, 2, 4], [4, 5, 6], [5, 6, 7]])
    # no blocking possible when buffers exceed the number of jobs: plain tandem queue
    d = line_departures(svc, 5, 5, False)
    assert np.allclose(d, [[1, 2, 3], [4, 5, 6], [5, 6, 7]])


def _event_simulation(svc: np.ndarray, cap2: int, cap3: int) -> np.ndarray:
    """Independent discrete-event reference: stations hold jobs, blocking after service.

    cap_s is the number of jobs station s may hold (waiting + in service, a
    finished-but-blocked job included). Infinite supply at station 1.
    Returns departure times (3, n).
    """
    n = svc.shape[1]
    cap = [None, cap2, cap3]
    queue: list[list[int]] = [[], [], []]       # jobs at station, FIFO; queue[s][0] is on the server
    finish = [None, None, None]                  # completion time of the job on the server
    done = [False, False, False]                 # server job finished and waiting to move
    dep = np.full((3, n), np.nan)
    next_job = 0
    now = 0.0

    def start(s):
        if queue[s] and finish[s] is None:
            finish[s] = now + svc[s, queue[s][0]]
            done[s] = False

    queue[0].append(next_job)
    next_job += 1
    start(0)
    while np.isnan(dep[2, n - 1]):
        # next completion
        times = [(finish[s], s) for s in range(3) if finish[s] is not None and not done[s]]
        now, s = min(times)
        done[s] = True
        moved = True
        while moved:                                  # resolve moves downstream first
            moved = False
            for s in (2, 1, 0):
                if not done[s]:
                    continue
                job = queue[s][0]
                if s < 2 and len(queue[s + 1]) >= cap[s + 1]:
                    continue
                queue[s].pop(0)
                dep[s, job] = now
                finish[s], done[s] = None, False
                if s < 2:
                    queue[s + 1].append(job)
                    start(s + 1)
                if s == 0 and next_job < n:
                    queue[0].append(next_job)
                    next_job += 1
                start(s)
                moved = True
    return dep


@pytest.mark.parametrize("b2,b3", [(1, 1), (1, 3), (2, 1), (4, 2)])
@pytest.mark.parametrize("waiting", [False, True])
def test_flowline_recursion_matches_event_simulation(b2, b3, waiting):
    rng = np.random.default_rng(b2 * 10 + b3 + 100 * waiting)
    svc = rng.exponential(size=(3, 300)) / np.array([[1.0], [1.3], [0.8]])
    d = line_departures(svc, b2, b3, waiting)
    ref = _event_simulation(svc, b2 + waiting, b3 + waiting)
    assert np.allclose(d, ref, rtol=0, atol=1e-9)


def test_flowline_output_uses_recursion_and_documented_streams():
    from rands.streams import exponential_at, stream_state
    import numba

    @numba.njit
    def draws(key, rep, n):
        st = stream_state(key, rep)
        return np.array([exponential_at(st, j) for j in range(n)])

    p = FlowLine(L=6, warmup=30, jobs=10)
    s = Streams(9)
    i, r = 17, 4
    e = draws(s.key_of(i), r, 3 * 40).reshape(3, 40)
    svc = e / p.rates[i][:, None]
    d = line_departures(svc, int(p.buffers[i, 0]), int(p.buffers[i, 1]), False)
    expected = 10 / (d[2, 39] - d[2, 29])
    got = p.simulate(np.array([i]), np.array([r]), s)[0]
    assert got == pytest.approx(expected, rel=1e-13)


# --------------------------------------------------------------------------- FlowLine: streams
def test_flowline_reproducible_and_block_order_irrelevant():
    p = FlowLine(L=8, warmup=200, jobs=20)
    for crn in (False, True):
        s = Streams(7, crn=crn)
        sys = np.repeat(np.arange(0, p.k, 5), 6)
        reps = np.tile(np.arange(6), sys.size // 6)
        a = p.simulate(sys, reps, s)
        perm = np.random.default_rng(1).permutation(sys.size)
        b = p.simulate(sys[perm], reps[perm], s)
        assert np.array_equal(a[perm], b)
        c = np.array([p.simulate(sys[n:n + 1], reps[n:n + 1], Streams(7, crn=crn))[0] for n in range(0, sys.size, 7)])
        assert np.array_equal(a[::7], c)
    x = p.simulate(np.array([3, 3]), np.array([0, 1]), Streams(7))
    y = p.simulate(np.array([3]), np.array([0]), Streams(8))
    assert x[0] != x[1] and x[0] != y[0]


def test_flowline_crn_positive_correlation():
    p = FlowLine(L=12, warmup=300, jobs=50)
    i, j = p.index_of("(4,4,4|6,6)"), p.index_of("(3,5,4|5,7)")
    R = 400
    sys = np.repeat([i, j], R)
    reps = np.tile(np.arange(R), 2)
    x = p.simulate(sys, reps, Streams(2, crn=True)).reshape(2, R)
    y = p.simulate(sys, reps, Streams(2, crn=False)).reshape(2, R)
    assert np.corrcoef(x)[0, 1] > 0.5
    assert abs(np.corrcoef(y)[0, 1]) < 0.2


def test_flowline_l20_truth_table():
    p = FlowLine(L=20)
    m, se = p.true_means, p.true_means_se
    assert m.shape == (3249,) and se.shape == (3249,)
    assert np.all(se > 0) and se.max() < 0.01
    assert FlowLine(L=20, buffer_convention="waiting").true_means is None
    assert FlowLine(L=50).true_means is None
    # truth estimated with another seed: fresh samples agree within 4.5 combined SE
    order = np.argsort(-m)
    sel = np.array([order[0], order[1], order[len(order) // 2], order[-1], 0])
    R = 1500
    x = p.simulate(np.repeat(sel, R), np.tile(np.arange(R), sel.size), Streams(123)).reshape(sel.size, R)
    z = (x.mean(1) - m[sel]) / np.sqrt(x.var(1, ddof=1) / R + se[sel] ** 2)
    assert np.all(np.abs(z) < 4.5), z


# --------------------------------------------------------------------------- Inventory
def test_poisson_inversion_table():
    cdf = _poisson_cdf_table(25.0)
    assert cdf[-1] == 1.0 and np.all(np.diff(cdf) >= 0)
    for d in (0, 5, 25, 40, 60):
        assert _poisson_inv(cdf[d], cdf) == d
        assert _poisson_inv(np.nextafter(cdf[d], 2.0), cdf) == d + 1
    assert _poisson_inv(1.0 - 2.0**-53, cdf) == cdf.shape[0] - 1


def test_inventory_labels_and_params():
    p = Inventory()
    assert p.k == 1600
    assert p.label(0) == "(s=1,S=2)" and p.label(1599) == "(s=40,S=80)"
    for i in range(p.k):
        assert p.index_of(p.label(i)) == i
        assert 1 <= p.small_s[i] <= 40 and 1 <= p.big_s[i] - p.small_s[i] <= 40
    with pytest.raises(ParameterError, match="S - s"):
        p.index_of(5, 5)
    with pytest.raises(ParameterError, match="periods"):
        Inventory(periods=0)
    assert isinstance(rands.problems.make("inventory"), Inventory)


def test_inventory_exact_one_period_closed_form():
    # one period from level S: no order; cost = E[(S-D)^+] + 5 E[(D-S)^+]
    from scipy import stats
    p = Inventory(periods=1)
    d = np.arange(400)
    pmf = stats.poisson.pmf(d, 25)
    for i in (0, 714, 1599):
        S = p.big_s[i]
        cost = np.sum(pmf * np.where(d <= S, S - d, 5 * (d - S)))
        assert p.true_means[i] == pytest.approx(-cost, rel=1e-12)


def test_inventory_exact_two_periods_brute_force():
    # two periods: enumerate the first demand explicitly
    from scipy import stats
    p = Inventory(periods=2)
    d = np.arange(300)
    pmf = stats.poisson.pmf(d, 25)

    def h(level):
        return np.sum(pmf * np.where(d <= level, level - d, 5 * (d - level)))

    for i in (3, 714, 1234):
        s, S = p.small_s[i], p.big_s[i]
        total = 0.0
        for d1, p1 in zip(d, pmf):
            e = S - d1
            c = (e if e >= 0 else -5 * e)
            y = e
            if e < s:
                c += 32 + 3 * (S - e)
                y = S
            total += p1 * (c + h(y))
        assert p.true_means[i] == pytest.approx(-total / 2, rel=1e-10)


def test_inventory_simulation_matches_exact_means():
    p = Inventory()
    tm = p.true_means
    sel = np.array([0, 39, 714, 799, 1599, 1234])
    R = 30000
    x = p.simulate(np.repeat(sel, R), np.tile(np.arange(R), sel.size), Streams(5)).reshape(sel.size, R)
    z = (x.mean(1) - tm[sel]) / (x.std(1, ddof=1) / np.sqrt(R))
    assert np.all(np.abs(z) < 4), z


def test_inventory_reproducible_crn_and_block_order():
    p = Inventory()
    sys = np.array([5, 700, 714, 5, 1500])
    reps = np.array([0, 0, 3, 3, 9])
    s = Streams(4, crn=True)
    a = p.simulate(sys, reps, s)
    b = p.simulate(sys[::-1], reps[::-1], s)
    assert np.array_equal(a, b[::-1])
    R = 500
    x = p.simulate(np.repeat([714, 715], R), np.tile(np.arange(R), 2), s).reshape(2, R)
    assert np.corrcoef(x)[0, 1] > 0.8


def test_inventory_optimum_plausible():
    p = Inventory()
    tm = p.true_means
    b = int(np.argmax(tm))
    s, S = p.small_s[b], p.big_s[b]
    # interior optimum: reorder point near one period's mean demand, order size ~ EOQ
    assert 10 <= s <= 30 and 20 <= S - s <= 40
    # a CRN simulation of all 1,600 systems selects a system within 0.2 of the optimum
    R = 1000
    x = p.simulate(np.repeat(np.arange(p.k), R), np.tile(np.arange(R), p.k), Streams(8, crn=True))
    pick = int(np.argmax(x.reshape(p.k, R).mean(1)))
    assert tm[b] - tm[pick] < 0.2
