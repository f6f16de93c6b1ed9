"""One constraints table per procedure, problem and [run]: every parameter, every bad value.

For each registered procedure and problem, each parameter of its table gets the values
of a fixed pool that the table refuses (a wrong type, out of range, NaN, +-inf, a bool
where a number is meant, ...); each must be refused before any work with one line naming
the owner, the parameter and the value. Each default value must pass its own table.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import rands
from rands import cli
from rands.errors import ParameterError
from rands.params import (ALPHA, Boolean, Interval, Mapping_, NoneValue, Options, Seed, Sequence_, String,
                          check_param, describe_value, validate_params)

POOL = ["abc", "", True, False, math.nan, math.inf, -math.inf, -1, 0, 1, 2, 2.5, -0.5, 1e-300, 10**30,
        [1, 2], [], {"a": 1}, None]


def _bad_values(constraints):
    out = []
    for v in POOL:
        if any(c.is_satisfied_by(v) for c in constraints):
            continue
        out.append(v)
    for c in constraints:                   # just past each finite bound
        if isinstance(c, Interval):
            step = 1 if c.kind is int else 1e-9 * max(1.0, abs(c.low or 0), abs(c.high or 0))
            for x in ((c.low - step) if c.low is not None else None, (c.high + step) if c.high is not None else None):
                if x is not None and not any(cc.is_satisfied_by(x) for cc in constraints):
                    out.append(x)
    return out


def _cases(kind: str):
    mod = rands.procedures if kind == "procedure" else rands.problems
    get = mod.procedure_class if kind == "procedure" else mod.problem_class
    for name in mod.names():
        try:
            cls = get(name)
        except (ImportError, AttributeError):   # an optional dependency missing here
            continue
        yield name, cls


PROCEDURES = list(_cases("procedure"))
PROBLEMS = list(_cases("problem"))


def _params(cls) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [p.name for p in list(sig.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


@pytest.mark.parametrize("kind,name,cls", [("procedure", n, c) for n, c in PROCEDURES]
                         + [("problem", n, c) for n, c in PROBLEMS])
def test_every_parameter_is_in_the_table_and_defaults_pass(kind, name, cls):
    table = getattr(cls, "_parameter_constraints", None)
    assert table, f"{kind} {name!r} has no _parameter_constraints table"
    assert sorted(table) == sorted(_params(cls)), f"{kind} {name!r}: table and __init__ differ"
    sig = inspect.signature(cls.__init__)
    for p in list(sig.parameters.values())[1:]:
        if p.default is not p.empty:
            check_param(f"{kind} {name!r}", p.name, p.default, table[p.name])


@pytest.mark.parametrize("name,cls", PROCEDURES)
def test_procedures_refuse_each_bad_value_naming_it(name, cls):
    n = 0
    for param, constraints in cls._parameter_constraints.items():
        for bad in _bad_values(constraints):
            with pytest.raises(ParameterError) as info:
                rands.procedures.make(name, **{param: bad})
            msg = str(info.value)
            assert "\n" not in msg
            assert msg.startswith(f"procedure {cls.name!r}: {param} must be "), msg
            assert msg.endswith(f"got {describe_value(bad)}"), msg
            n += 1
    assert n >= 5 * len(cls._parameter_constraints)


@pytest.mark.parametrize("name,cls", PROBLEMS)
def test_problems_refuse_each_bad_value_naming_it(name, cls):
    n = 0
    for param, constraints in cls._parameter_constraints.items():
        for bad in _bad_values(constraints):
            with pytest.raises(ParameterError) as info:
                rands.problems.make(name, **{param: bad})
            msg = str(info.value)
            assert "\n" not in msg
            assert msg.startswith(f"problem {name!r}: {param} must be "), msg
            assert msg.endswith(f"got {describe_value(bad)}"), msg
            n += 1
    assert n >= 3 * len(cls._parameter_constraints)


def test_run_table_refuses_each_bad_value():
    table = cli._run_constraints()
    assert sorted(table) == sorted(cli._RUN_KEYS)
    for key, constraints in table.items():
        for bad in _bad_values(constraints):
            if bad is None:                 # TOML has no null; None means "not given"
                continue
            with pytest.raises(ParameterError, match=rf"^\[run\]: {key} must be .*got "):
                cli.check_run_table({key: bad})


def test_constraint_semantics():
    """Bools are not numbers, NaN is never valid, inf only where allowed, numpy scalars count."""
    real = Interval(float, 0.0, None, closed="neither")
    assert real.is_satisfied_by(np.float32(0.5)) and real.is_satisfied_by(3)
    assert not real.is_satisfied_by(True) and not real.is_satisfied_by(math.nan)
    assert not real.is_satisfied_by(math.inf) and Interval(float, 0, None, allow_inf=True).is_satisfied_by(math.inf)
    assert not real.is_satisfied_by(10**400)
    integer = Interval(int, 2, 5)
    assert integer.is_satisfied_by(np.int64(5)) and not integer.is_satisfied_by(5.0)
    assert not integer.is_satisfied_by(np.bool_(True)) and not integer.is_satisfied_by(6)
    assert Options(("a", "b")).is_satisfied_by("a") and not Options((1,)).is_satisfied_by(True)
    assert Boolean().is_satisfied_by(np.bool_(False)) and not Boolean().is_satisfied_by(0)
    assert Seed().is_satisfied_by([1, 2]) and not Seed().is_satisfied_by([1, -2])
    assert not Seed().is_satisfied_by(True) and not Seed().is_satisfied_by([])
    seq = Sequence_(Interval(float, None, None), min_len=2)
    assert seq.is_satisfied_by([1, 2.5]) and seq.is_satisfied_by(np.arange(3.0))
    assert not seq.is_satisfied_by([1, True]) and not seq.is_satisfied_by([1, math.nan])
    assert not seq.is_satisfied_by("ab") and not seq.is_satisfied_by([[1], [2]])
    assert Sequence_(Mapping_()).is_satisfied_by([{"a": 1}]) and not Sequence_(Mapping_()).is_satisfied_by([1])
    assert not String().is_satisfied_by("") and not String().is_satisfied_by("a\x00b")
    assert NoneValue().is_satisfied_by(None)
    # messages: the range for a value of the right type, the whole form otherwise
    with pytest.raises(ParameterError, match=r"^x: alpha must be in \[1e-10, 1\), got 1.5$"):
        check_param("x", "alpha", 1.5, ALPHA)
    with pytest.raises(ParameterError, match=r"^x: alpha must be a number in \[1e-10, 1\), got 'a'$"):
        check_param("x", "alpha", "a", ALPHA)
    with pytest.raises(ParameterError, match=r"^x: n must be >= 2 or None \(omit the key\), got 1$"):
        check_param("x", "n", 1, [Interval(int, 2, None), NoneValue()])
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['b'\]; valid: \['a'\]"):
        validate_params({"a": [Boolean()]}, {"b": 1}, "x")



ALL_TABLES = ([(f"procedure {n!r}", c._parameter_constraints) for n, c in PROCEDURES]
              + [(f"problem {n!r}", c._parameter_constraints) for n, c in PROBLEMS]
              + [("[run]", cli._run_constraints())])


@pytest.mark.parametrize("owner,table", ALL_TABLES, ids=[o for o, _ in ALL_TABLES])
def test_policy_no_parameter_takes_non_finite_numbers_or_stray_bools(owner, table):
    """Independent of what each table says: NaN and +-inf are never a valid parameter, and a bool
    is valid only where the parameter is a switch (issue 15: delta = inf, crn = "yes", seed = true)."""
    for param, constraints in table.items():
        for v in (math.nan, math.inf, -math.inf, np.float64("nan")):
            assert not any(c.is_satisfied_by(v) for c in constraints), (owner, param, v)
        if not any(isinstance(c, Boolean) for c in constraints):
            assert not any(c.is_satisfied_by(True) for c in constraints), (owner, param)
        else:
            assert not any(c.is_satisfied_by(s) for c in constraints for s in ("yes", 1, 0)), (owner, param)
