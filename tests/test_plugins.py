"""Problems and procedures found through entry points: a third-party package, the applications."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import rands
from rands import plugins
from rands.errors import ParameterError

PKG = '''
import numpy as np
from rands.problems.base import Problem, check_block
from rands.procedures.fixed_budget.equal import EqualAllocation


class Shifted(Problem):
    name = "shifted-normals"

    def __init__(self, k=4, shift=1.0):
        self.k = k
        self.shift = shift
        self.true_means = shift * np.arange(k, dtype=float)

    def simulate(self, systems, reps, streams):
        systems, reps = check_block(systems, reps, self.k)
        return self.true_means[systems] + 0.01 * (reps % 3)

    def params(self):
        return {"k": self.k, "shift": self.shift}


class MyEqual(EqualAllocation):
    name = "my-equal"
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    (tmp_path / "thirdparty_rs").mkdir()
    (tmp_path / "thirdparty_rs" / "__init__.py").write_text(PKG)
    dist = tmp_path / "thirdparty_rs-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-rs\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[rands.problems]\nshifted-normals = thirdparty_rs:Shifted\n\n"
        "[rands.procedures]\nmy-equal = thirdparty_rs:MyEqual\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.refresh()
    yield tmp_path
    plugins.refresh()


def test_third_party_problem_and_procedure_by_name(third_party):
    assert "shifted-normals" in rands.problems.names()
    assert "my-equal" in rands.procedures.names()
    res = rands.select("shifted-normals", "my-equal", seed=0, problem_params={"k": 5},
                       budget=50)
    assert res.best == 4 and res.total_samples == 50
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['shfit'\] .*valid: k, shift"):
        rands.problems.make("shifted-normals", shfit=2)


def test_rands_run_finds_a_third_party_problem(third_party):
    cfg = third_party / "c.toml"
    cfg.write_text('[problem]\nname = "shifted-normals"\nk = 3\n'
                   '[procedure]\nname = "my-equal"\nbudget = 30\n[run]\nseed = 1\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(third_party), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "rands", "run", str(cfg), "--json", "--quiet"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert '"best": 2' in out.stdout


def test_applications_register_through_entry_points_only():
    eps = plugins.entry_point_targets(plugins.PROBLEMS)
    for name in ("nas-mini", "nas-live", "flops", "riskpo_policies", "rlr_finetunes"):
        assert eps[name].startswith("rands.applications."), name
    assert rands.problems.make("nas-mini").k == 500
    engine = Path(rands.__file__).parent
    for path in engine.rglob("*.py"):
        assert "rands.applications" not in path.read_text(), f"{path} names an application"
