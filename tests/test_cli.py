import json
import subprocess
import sys

import pytest

from rands.cli import load_config, main, parse_value
from rands.errors import ParameterError


def write(tmp_path, text):
    p = tmp_path / "cfg.toml"
    p.write_text(text)
    return p


CFG = """
[problem]
name = "slippage"
k = 6
delta = 0.5

[procedure]
name = "equal"
budget = 60

[run]
seed = 3
"""


def test_run_json_prints_one_record(tmp_path, capsys):
    cfg = write(tmp_path, CFG)
    assert main(["run", str(cfg), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["total_samples"] == 60 and rec["procedure"] == "equal" and rec["seed"] == 3
    assert len(rec["sample_sizes"]) == 6


def test_run_is_reproducible_and_writes_output(tmp_path, capsys):
    cfg = write(tmp_path, CFG)
    out = tmp_path / "res.json"
    main(["run", str(cfg), "--json", "--output", str(out)])
    first = json.loads(capsys.readouterr().out)
    main(["run", str(cfg), "--json"])
    second = json.loads(capsys.readouterr().out)
    assert first["means"] == second["means"] and first["best"] == second["best"]
    assert json.loads(out.read_text())["means"] == first["means"]


def test_select_command_line(capsys):
    assert main(["select", "--problem", "mdm", "-P", "k=5", "--procedure", "equal", "-p", "budget=50",
                 "--seed", "1", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["problem"]["name"] == "mdm" and rec["total_samples"] == 50


def test_procedures_lists_guarantees(capsys):
    main(["procedures", "--json"])
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert "equal" in names
    assert all(r["guarantee"] for r in rows)


def test_bad_config_errors_name_the_input(tmp_path, capsys):
    with pytest.raises(ParameterError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = write(tmp_path, CFG.replace("seed = 3", "seed = 3\nbackend_typo = 1"))
    with pytest.raises(ParameterError, match="backend_typo"):
        load_config(bad)
    bad = write(tmp_path, CFG.replace('name = "equal"', 'name = "nope"'))
    assert main(["run", str(bad)]) == 2
    assert "unknown procedure 'nope'" in capsys.readouterr().err
    bad = write(tmp_path, CFG.replace("budget = 60", "budget = 3"))
    assert main(["run", str(bad)]) == 2
    assert "budget=3 is below n0*k" in capsys.readouterr().err


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("kn") == "kn" and parse_value("[1, 2]") == [1, 2]


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "rands", "select", "--problem", "slippage", "-P", "k=3",
                          "--procedure", "equal", "-p", "budget=30", "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["total_samples"] == 30


def test_example_configs_are_valid_and_the_cheap_ones_run(capsys):
    from pathlib import Path

    from rands.selection import resolve_problem, resolve_procedure

    examples = sorted(Path(__file__).parents[1].joinpath("examples").glob("*.toml"))
    assert len(examples) >= 4
    for path in examples:
        cfg = load_config(path)
        prob = dict(cfg["problem"])
        proc = dict(cfg["procedure"])
        resolve_procedure(proc.pop("name"), proc).check_problem(resolve_problem(prob.pop("name"), prob))
    for name in ("kn_slippage.toml", "p3c_clustered.toml"):
        assert main(["run", str(Path(__file__).parents[1] / "examples" / name), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["best"] == 0
