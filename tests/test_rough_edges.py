"""Small usability items: the n0-must-grow rule for OCBA and EFG, unknown problem parameters,
KT stopping between waves of shipped matches."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import rands
from rands.checkpoint import Checkpointer
from rands.cli import main
from rands.errors import Interrupted, ParameterError


def test_small_first_stage_warns_for_ocba_and_efg():
    with pytest.warns(UserWarning, match=r"efg: the first stage n0\*k = 10\*17 = 170 is 2% of the "
                                         r"budget 6,800.*consider n0 >= 80"):
        rands.select("slippage", "efg", seed=1, problem_params={"k": 17}, budget=6800, n0=10)
    with pytest.warns(UserWarning, match="ocba: .*n0 must grow with the budget"):
        rands.select("slippage", "ocba", seed=1, problem_params={"k": 10}, budget=2000, n0=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a first stage of 20% or more, or another procedure: silent
        rands.select("slippage", "ocba", seed=1, problem_params={"k": 10}, budget=500, n0=10)
        rands.select("slippage", "equal", seed=1, problem_params={"k": 10}, budget=5000)


def test_procedures_listing_states_the_rule(capsys):
    assert main(["procedures"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split()[0]: b for b in out.split("\n") if b and not b.startswith(" ")}
    assert "ocba" in blocks and "efg" in blocks
    rule = [line for line in out.splitlines() if "n0 must grow with the budget" in line]
    assert len(rule) == 2 and all("warns when n0*k < 20% of the budget" in r for r in rule)


@pytest.mark.parametrize("name, bad, valid", [
    ("slippage", "sigmaa", "k, delta, sigma, rho, variances"),
    ("flowline", "l", "L, warmup, jobs, buffer_convention"),
])
def test_unknown_problem_parameter_lists_the_valid_ones(name, bad, valid):
    with pytest.raises(ParameterError) as exc:
        rands.problems.make(name, **{bad: 1})
    assert f"unknown parameter(s) ['{bad}'] for problem '{name}'; valid: {valid}" == str(exc.value)


from stopping import StopAt as _StopAt  # noqa: E402  (a SIGTERM between two waves)


def test_kt_shipped_round_stops_between_waves_and_resumes_identically(tmp_path, monkeypatch):
    """KT matches dealt whole to workers come back in waves with a boundary after each, so a
    stop request waits for one wave (kn_engine.WAVE_S), not the round; the resume is identical."""
    from rands.parallel import make_executor
    from rands.procedures.fixed_precision import kn_engine
    monkeypatch.setattr(kn_engine, "WAVE_S", 1e-9)          # one match per wave
    params = dict(alpha=0.05, delta=0.5, n0=10, g=5, crn=True)
    spec = {"procedure": "kt", "params": params, "seed": 5}
    with make_executor("processes", 2) as ex:
        ex.group_ship_threshold_s = 0.0                    # ship every round's matches
        full = rands.select("mdm", "kt", seed=5, problem_params={"k": 60}, executor=ex, **params)
        path = tmp_path / "kt.npz"
        stop = _StopAt(path, spec, interval_s=3600, stop_at=3)
        with pytest.raises(Interrupted):
            rands.select("mdm", "kt", seed=5, problem_params={"k": 60}, executor=ex,
                         checkpoint=stop, **params)
        with np.load(path) as z:
            shipped = [z[key] for key in z.files if key.endswith("shipped")]
        assert len(shipped) == 1 and (shipped[0] >= 0).sum() == 3 and (shipped[0] < 0).sum() == 9
        again = rands.select("mdm", "kt", seed=5, problem_params={"k": 60}, executor=ex,
                             checkpoint=Checkpointer(path, spec, interval_s=3600), **params)
    assert again.best == full.best and again.total_samples == full.total_samples
    assert np.array_equal(again.sample_sizes, full.sample_sizes)
    assert np.array_equal(again.means, full.means, equal_nan=True)


def test_one_crn_switch_for_every_procedure():
    """crn= is a parameter of every procedure: accepted, or refused with the reason."""
    for name in rands.procedures.names():
        accepted = []
        for value in (True, False):
            try:
                proc = rands.procedures.make(name, crn=value)
            except ParameterError as exc:
                assert "crn" in str(exc) and "independent" in str(exc) or "always uses" in str(exc), exc
                continue
            assert proc.crn_enabled is value, (name, value)
            accepted.append(value)
        assert accepted, name
    with pytest.raises(ParameterError, match="p3c always uses common random numbers.*give crn=True"):
        rands.procedures.make("p3c", crn=False)
    with pytest.raises(ParameterError, match="pass never uses common random numbers.*give crn=False"):
        rands.procedures.make("pass", crn=True)
    res = rands.select("mdm", "pass", seed=1, problem_params={"k": 5}, crn=False, n0=10)
    assert res.procedure == "pass" and "crn" not in res.params


def test_fbkt_reports_its_spend():
    """One group: rounds 1..R spend 1 - q^R (1 + R/phi) of B = N - n0 k (floors lose a little
    more); several groups with final='rest': the winners share what is left."""
    N, n0, k, phi = 5000, 8, 50, 3
    res = rands.select("slippage", "fbkt", seed=1, problem_params={"k": k}, budget=N, n0=n0, phi=phi)
    R, q = int(np.ceil(np.log2(k))), (phi - 1) / phi
    tail = q ** R * (1 + R / phi) * (N - n0 * k)
    assert res.extras["unspent"] == N - res.total_samples
    assert tail <= res.extras["unspent"] <= tail + 0.05 * N
    rest = rands.select("slippage", "fbkt", seed=1, problem_params={"k": k}, budget=N, n0=n0,
                        n_groups=4, final="rest")
    assert 0 <= rest.extras["unspent"] < 4 and rest.total_samples > N - 4
    assert "budget spent: rounds 1..R use 1 - q^R (1 + R/phi)" in rands.procedures.procedure_class(
        "fbkt").describe()["notes"]


def test_rinott_stage_two_in_pieces_stops_and_resumes_identically(tmp_path, monkeypatch):
    """Rinott's second stage is drawn in pieces with a boundary after each, so a stop request
    waits for one piece; pieces change no sample, and a resume gives the same result."""
    from rands.procedures.fixed_precision import _core
    params = dict(alpha=0.05, delta=0.3, n0=10)
    whole = rands.select("mdm", "rinott", seed=4, problem_params={"k": 12}, **params)
    monkeypatch.setattr(_core, "STAGE_PIECE_S", 1e-12)        # one system per piece
    pieces = rands.select("mdm", "rinott", seed=4, problem_params={"k": 12}, **params)
    assert pieces.best == whole.best and np.array_equal(pieces.means, whole.means)
    spec = {"procedure": "rinott", "params": params, "seed": 4}
    path = tmp_path / "r.npz"
    with pytest.raises(Interrupted):
        rands.select("mdm", "rinott", seed=4, problem_params={"k": 12},
                     checkpoint=_StopAt(path, spec, interval_s=3600, stop_at=4), **params)
    with np.load(path) as z:
        done = [z[key] for key in z.files if key.endswith("done")]
    assert len(done) == 1 and 0 < done[0].sum() < 12
    again = rands.select("mdm", "rinott", seed=4, problem_params={"k": 12},
                         checkpoint=Checkpointer(path, spec, interval_s=3600), **params)
    assert again.best == whole.best and again.total_samples == whole.total_samples
    assert np.array_equal(again.sample_sizes, whole.sample_sizes)
    assert np.array_equal(again.means, whole.means)
