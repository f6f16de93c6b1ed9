"""Small usability items: the n0-must-grow rule for OCBA and EFG, unknown problem parameters."""
from __future__ import annotations

import warnings

import pytest

import rands
from rands.cli import main
from rands.errors import ParameterError


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
