"""Seeded fuzz over run configs: wrong-type and out-of-range TOML values for every key.

600 cases (seed 15), each run in-process through ``rands.cli.main(["run", cfg])`` under a
10 s alarm: every case must end with exit code 0 or 2, print no traceback, and on exit 2
print exactly one ``rands: error:`` line that names the key it was given (or, for a
structural fault, the file). Values come from each key's own constraints table (values it
refuses, just past each bound) and a fixed pool of wrong types; a few cases set a boundary
value that is valid (k = 2, n0 = 2), so the exit-0 path is exercised too. Bases are small
problems so that accepted cases finish in milliseconds.
"""
from __future__ import annotations

import math
import random
import signal
from pathlib import Path

import pytest

import rands
from rands import cli
from rands.params import Interval
from tomlio import render

N_CASES = 600
SEED = 15
TIMEOUT_S = 10

BASES = [
    ({"name": "slippage", "k": 5, "delta": 0.5}, {"name": "kn", "delta": 0.5, "n0": 10}),
    ({"name": "mdm", "k": 4, "delta": 0.5}, {"name": "rinott", "delta": 0.5, "n0": 10}),
    ({"name": "random", "k": 5}, {"name": "equal", "budget": 100}),
    ({"name": "clustered", "k": 8, "p": 2}, {"name": "ocba", "budget": 200, "n0": 5, "increment": 20}),
    ({"name": "normal", "means": [0.0, 0.5, 1.0]}, {"name": "efg", "budget": 100, "n0": 5}),
    ({"name": "slippage", "k": 8, "delta": 0.5}, {"name": "efg+", "budget": 200, "n0": 5}),
    ({"name": "slippage", "k": 6, "delta": 0.5}, {"name": "fbkt", "budget": 200, "n0": 4}),
    ({"name": "mdm", "k": 6, "delta": 0.5}, {"name": "kt", "delta": 0.5, "n0": 10, "g": 3}),
    ({"name": "mdm", "k": 5, "delta": 0.5}, {"name": "gsp", "delta": 0.5, "n1": 10, "rbar": 2}),
    ({"name": "slippage", "k": 5, "delta": 1.0}, {"name": "pass", "n0": 10, "batch": 10, "max_samples": 200}),
    ({"name": "clustered", "k": 16, "p": 2}, {"name": "dc", "delta": 0.5, "n0": 10, "n_groups": 2}),
    ({"name": "flowline", "L": 5, "warmup": 20, "jobs": 20}, {"name": "equal", "budget": 48}),
    ({"name": "inventory", "periods": 5}, {"name": "equal", "budget": 3200}),
]
RUN_BASE = {"seed": 1}

WRONG_TYPES = ["abc", "", True, False, [1, 2], [], {"a": 1}, 1.5, -7, 0, math.nan, math.inf, -math.inf,
               9223372036854775807, -9223372036854775808, 1e308, -1e-300, [math.nan], ["x", 1]]


class _CaseTimeout(BaseException):
    pass


def _table_values(constraints) -> list:
    """Values just past each finite bound of the key's intervals (refused by the table)."""
    out = []
    for c in constraints:
        if isinstance(c, Interval):
            step = 1 if c.kind is int else 1e-9 * max(1.0, abs(c.low or 0.0), abs(c.high or 0.0))
            if c.low is not None:
                out.append(c.low - step)
            if c.high is not None:
                out.append(c.high + step)
    return [v for v in out if not any(c.is_satisfied_by(v) for c in constraints)]


def _valid_edges(constraints) -> list:
    """The smallest valid integer of an int interval (a cheap run: k = 2, n0 = 2, ...)."""
    return [c.low for c in constraints if isinstance(c, Interval) and c.kind is int and c.low is not None
            and c.closed in ("both", "left") and c.low <= 4]


def _owner_table(section: str, name: str) -> dict:
    if section == "problem":
        return rands.problems.problem_class(name)._parameter_constraints
    if section == "procedure":
        return rands.procedures.procedure_class(name)._parameter_constraints
    return cli._run_constraints()


def make_case(rng: random.Random, i: int, tmp: Path) -> tuple[str, bytes, list[str]]:
    """(kind, file bytes, keys whose name a refusal should mention)."""
    problem, procedure = (dict(t) for t in rng.choice(BASES))
    run = dict(RUN_BASE)
    tables = {"problem": problem, "procedure": procedure, "run": run}
    roll = rng.random()
    if roll < 0.06:                                   # structural faults
        kind = rng.choice(["binary", "truncated", "run_not_table", "name_type", "no_problem", "extra_table",
                           "unknown_key", "duplicate"])
        if kind == "binary":
            return kind, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))), []
        text = render(tables)
        if kind == "truncated":
            return kind, text[: rng.randrange(1, len(text))].encode() + b"[", []
        if kind == "run_not_table":
            tables.pop("run")
            return kind, (render(tables) + "run = 5\n").encode(), ["run"]
        if kind == "name_type":
            section = rng.choice(["problem", "procedure"])
            tables[section]["name"] = rng.choice([5, True, [1], {"a": 1}, "nope"])
            return kind, render(tables).encode(), [section]
        if kind == "no_problem":
            tables.pop("problem")
            return kind, render(tables).encode(), ["problem"]
        if kind == "extra_table":
            tables["extra"] = {"x": 1}
            return kind, render(tables).encode(), ["extra"]
        if kind == "unknown_key":
            section = rng.choice(["problem", "procedure", "run"])
            tables[section]["no_such_key"] = 1
            return kind, render(tables).encode(), ["no_such_key"]
        return kind, (text + "[run]\nseed = 2\n").encode(), []        # duplicate table
    keys = []
    for _ in range(1 if rng.random() < 0.8 else rng.randrange(2, 4)):
        section = rng.choice(["problem", "procedure", "run", "run"])
        name = tables[section].get("name")
        table = _owner_table(section, name)
        key = rng.choice(sorted(table))
        if section == "run" and key in ("backend", "workers") and rng.random() < 0.5:
            value = rng.choice(["threads", "", 5, True, 0, -1, 1.5, 10**9])
        elif section == "run" and key in ("output", "checkpoint") and rng.random() < 0.6:
            blocker = tmp / f"file{i}"
            blocker.write_text("x")
            value = rng.choice(["", str(blocker / "x.json"), str(tmp), "/proc/1/x.json", "a\u0000b"])
        else:
            pool = WRONG_TYPES + _table_values(table[key])
            edges = _valid_edges(table[key])
            value = rng.choice(edges) if edges and rng.random() < 0.1 else rng.choice(pool)
        if isinstance(value, str) and "\u0000" in value:
            value = value.replace("\u0000", "")            # TOML strings cannot hold NUL
        tables[section][key] = value
        keys.append(key)
    return "value", render(tables).encode(), keys


def _alarm(signum, frame):  # noqa: ARG001
    raise _CaseTimeout()


def test_config_fuzz(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                         # relative paths in the cases land here
    for j, (problem, procedure) in enumerate(BASES):    # warm up (numba compiles) outside the alarm
        cfg = tmp_path / f"base{j}.toml"
        cfg.write_text(render({"problem": problem, "procedure": procedure, "run": RUN_BASE}))
        assert cli.main(["run", str(cfg)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    rng = random.Random(SEED)
    previous = signal.signal(signal.SIGALRM, _alarm)
    tally = {"cases": 0, "exit0": 0, "refused_clear": 0, "refused_unclear": [], "bad": []}
    try:
        for i in range(N_CASES):
            kind, data, keys = make_case(rng, i, tmp_path)
            cfg = tmp_path / f"case{i}.toml"
            cfg.write_bytes(data)
            signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
            try:
                rc = cli.main(["run", str(cfg), "--output", str(tmp_path / f"out{i}.json")]
                              if kind == "value" and not any(k == "output" for k in keys)
                              else ["run", str(cfg)])
            except _CaseTimeout:
                rc = "timeout"
            except SystemExit as exc:                       # argparse
                rc = exc.code
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            out, err = capsys.readouterr()
            tally["cases"] += 1
            errors = [ln for ln in err.splitlines() if ln.startswith("rands: error:")]
            others = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("rands: error:")]
            header_only = all(ln.startswith("rands: ") and " on " in ln for ln in others)
            if rc == 0 and not errors and header_only:
                tally["exit0"] += 1
            elif rc == 2 and len(errors) == 1 and "Traceback" not in err and header_only:
                line = errors[0]
                if not keys or any(k in line for k in keys) or str(cfg) in line:
                    tally["refused_clear"] += 1
                else:
                    tally["refused_unclear"].append((data.decode(errors="replace"), line))
            else:
                tally["bad"].append((kind, rc, data[:300], err[-600:]))
    finally:
        signal.signal(signal.SIGALRM, previous)
    summary = (f"{tally['cases']} cases: {tally['exit0']} ran (exit 0), {tally['refused_clear']} refused naming "
               f"the key, {len(tally['refused_unclear'])} refused without naming it, {len(tally['bad'])} bad")
    print(summary)
    assert tally["cases"] >= 500
    assert not tally["bad"], f"{summary}; first: {tally['bad'][:3]}"
    assert not tally["refused_unclear"], f"{summary}; all: {tally['refused_unclear']}"
    assert tally["exit0"] >= 10 and tally["refused_clear"] >= 400, summary
