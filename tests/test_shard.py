"""Sharded validation (``rands validate --shard I/N`` + ``rands merge``) and sweeps over configs
(``rands run A.toml B.toml ... --shard I/N``): a merged validation equals the unsharded one
bit for bit, directly and as a Slurm job array."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rands.cli import main, slurm_array_shard
from rands.errors import ParameterError
from rands.validation import ValidationShard, merge_shards, shard_indices, validate, validate_shard

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = {"k": 10, "delta": 0.2}
PARAMS = {"alpha": 0.1, "delta": 0.5, "n0": 10}
M = 40
# Rinott with an indifference zone wider than the true gap: PCS near 0.4 and random sample
# sizes, so a wrong seed for any macroreplication would show in PCS, its CI or the samples
ARGS = ["--problem", "slippage", "-P", "k=10", "-P", "delta=0.2", "--procedure", "rinott",
        "-p", "alpha=0.1", "-p", "delta=0.5", "-p", "n0=10", "--macroreps", str(M), "--seed", "11"]


def _same(a, b) -> None:
    """Bit-identical validation results (the wall time is measured, so it is left out)."""
    da, db = a.to_dict(), b.to_dict()
    da.pop("mean_wall_time")
    db.pop("mean_wall_time")
    assert json.dumps(da) == json.dumps(db)
    assert np.array_equal(a.selected, b.selected) and np.array_equal(a.samples, b.samples)


@pytest.fixture(scope="module")
def unsharded():
    return validate("slippage", "rinott", macroreps=M, seed=11, problem_params=PROBLEM, **PARAMS)


def test_four_shards_merge_to_the_unsharded_validation(unsharded):
    shards = [validate_shard("slippage", "rinott", macroreps=M, seed=11, shard=(i, 4),
                             problem_params=PROBLEM, **PARAMS) for i in range(4)]
    assert [list(s.runs["index"]) for s in shards][1] == list(range(1, M, 4))
    # through their JSON files, in any order
    again = [ValidationShard.from_dict(json.loads(s.to_json())) for s in shards[::-1]]
    merged = merge_shards(again)
    _same(merged, unsharded)
    assert 0.2 < unsharded.pcs < 0.8 and unsharded.sd_samples > 0   # not trivial


def test_shard_indices_cover_every_macroreplication_once():
    for total in (1, 7, 30):
        for n in (1, 3, 4, 9):
            got = sorted(m for i in range(n) for m in shard_indices(total, (i, n)))
            assert got == list(range(total))


def test_cli_shards_and_merge_equal_cli_validate(tmp_path, capsys, unsharded):
    assert main(["validate", *ARGS, "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    for i in range(4):
        assert main(["validate", *ARGS, "--shard", f"{i}/4", "--output", str(tmp_path / f"s{i}.json")]) == 0
    capsys.readouterr()
    assert main(["merge", *[str(tmp_path / f"s{i}.json") for i in range(4)], "--json",
                 "--output", str(tmp_path / "merged.json")]) == 0
    merged = json.loads(capsys.readouterr().out)
    for d in (full, merged):
        d.pop("mean_wall_time")
    assert merged == full
    assert json.loads((tmp_path / "merged.json").read_text())["pcs_ci"] == full["pcs_ci"]
    assert full["pcs"] == unsharded.pcs and full["mean_samples"] == unsharded.mean_samples


def test_merge_refuses_incomplete_or_foreign_shards(tmp_path):
    kw = dict(macroreps=8, problem_params=PROBLEM, **PARAMS)
    a = [validate_shard("slippage", "rinott", seed=1, shard=(i, 2), **kw) for i in range(2)]
    other = validate_shard("slippage", "rinott", seed=2, shard=(1, 2), **kw)
    with pytest.raises(ParameterError, match=r"missing \[1\]"):
        merge_shards(a[:1])
    with pytest.raises(ParameterError, match=r"repeated \[0\]"):
        merge_shards([a[0], a[0], a[1]])
    with pytest.raises(ParameterError, match="from another validation .*seed"):
        merge_shards([a[0], other])
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ParameterError, match="is not a validation shard"):
        merge_shards([bad])
    bad.write_text("{not json")
    with pytest.raises(ParameterError, match="is not valid JSON"):
        merge_shards([bad])
    with pytest.raises(ParameterError, match="does not exist"):
        merge_shards([tmp_path / "missing.json"])


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1/0", "a/b", "3", "1/2/3"])
def test_bad_shard_is_refused_before_work(text, capsys):
    assert main(["validate", *ARGS, f"--shard={text}", "--output", "x.json"]) == 2
    assert "--shard must look like I/N" in capsys.readouterr().err


def test_shard_needs_output(capsys):
    assert main(["validate", *ARGS, "--shard", "0/4"]) == 2
    assert "needs --output" in capsys.readouterr().err


def test_slurm_array_variables():
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1",
           "SLURM_ARRAY_TASK_MAX": "4", "SLURM_ARRAY_TASK_STEP": "1"}
    assert slurm_array_shard(env) == (2, 4)                    # --array=1-4
    assert slurm_array_shard({**env, "SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "0",
                              "SLURM_ARRAY_TASK_MAX": "12", "SLURM_ARRAY_TASK_STEP": "4"}) == (2, 4)  # 0-12:4
    assert slurm_array_shard({}) is None
    with pytest.raises(ParameterError, match="must be one range"):           # --array=1,2,7,9
        slurm_array_shard({**env, "SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MAX": "9"})


def test_validate_shards_itself_inside_an_array_job(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    out = tmp_path / "shard.json"
    assert main(["validate", *ARGS, "--output", str(out)]) == 0
    assert "shard 1/4 (from Slurm array task 1" in capsys.readouterr().err
    shard = ValidationShard.read(out)
    assert shard.shard == (1, 4) and list(shard.runs["index"]) == list(range(1, M, 4))
    assert main(["validate", *ARGS, "--shard", "none", "--json"]) == 0      # opt out
    assert json.loads(capsys.readouterr().out)["macroreps"] == M


# ---------------------------------------------------------------------------- sweeps

CONFIG = """
[problem]
name = "slippage"
k = 8
delta = {delta}

[procedure]
name = "rinott"
alpha = 0.05
delta = {delta}
n0 = 10

[run]
seed = 4
{extra}
"""


def _configs(folder: Path, extra: str = "") -> list[str]:
    paths = []
    for delta in (0.3, 0.4, 0.5):
        p = folder / f"d{delta}.toml"
        p.write_text(CONFIG.format(delta=delta, extra=extra))
        paths.append(str(p))
    return paths


def test_sweep_runs_its_share_of_the_configs(tmp_path, capsys):
    paths = _configs(tmp_path)
    singles = []
    for p in paths:
        assert main(["run", p, "--json"]) == 0
        singles.append(json.loads(capsys.readouterr().out))
    assert main(["run", *paths, "--json"]) == 0
    everything = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    keys = ("best", "sample_sizes", "total_samples")
    assert [[r[k] for k in keys] for r in everything] == [[r[k] for k in keys] for r in singles]
    out = tmp_path / "res" / "{name}.json"
    assert main(["run", *paths, "--shard", "1/2", "--output", str(out)]) == 0   # configs 1 only
    assert sorted(q.name for q in (tmp_path / "res").iterdir()) == ["d0.4.json"]
    got = json.loads((tmp_path / "res" / "d0.4.json").read_text())
    assert [got[k] for k in keys] == [singles[1][k] for k in keys]


def test_sweep_refuses_shared_paths_and_mpi_in_one_job(tmp_path, capsys):
    paths = _configs(tmp_path)
    assert main(["run", *paths, "--output", str(tmp_path / "one.json")]) == 2
    assert "put {name} or {index} in it" in capsys.readouterr().err
    (tmp_path / "mpi").mkdir()
    mpi = _configs(tmp_path / "mpi", 'backend = "mpi"')
    assert main(["run", *mpi]) == 2
    assert "configs in one MPI job" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))


def test_sweep_picks_the_array_task(tmp_path, monkeypatch, capsys):
    paths = _configs(tmp_path)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert main(["run", *paths, "--output", str(tmp_path / "{index}-{name}.json")]) == 0
    assert [q.name for q in tmp_path.glob("*.json")] == ["2-d0.5.json"]
    assert "run shard 2/3 (from Slurm array task 2" in capsys.readouterr().err
    assert main(["run", paths[0], "--json"]) == 0        # one config: never sharded
    assert "shard" not in capsys.readouterr().err


# ---------------------------------------------------------------------------- under Slurm


def test_sbatch_array_of_four_shards_merges_to_the_unsharded_validation(slurm, tmp_path, unsharded):
    """`sbatch validate-array.sbatch` (--array=0-3) then a merge job that depends on it:
    the merged validation equals the unsharded one bit for bit (PCS, CI, mean samples)."""
    script = ROOT / "examples" / "slurm" / "validate-array.sbatch"
    jobid = slurm.sbatch(script, "val", *ARGS, cwd=tmp_path)
    merge = slurm.submit_wrap("rands merge val/shard-*.json --json --output val/validation.json",
                              options=(f"--dependency=afterok:{jobid}", "--output=merge-%j.out"), cwd=tmp_path)
    slurm.wait(jobid, timeout=180)
    states = slurm.array_states(jobid)
    assert sorted(states) == ["0", "1", "2", "3"], states
    assert all(s == ("COMPLETED", "0:0") for s in states.values()), states
    info = slurm.wait(merge, timeout=120)
    assert info["JobState"] == "COMPLETED", (info, (tmp_path / f"merge-{merge}.out").read_text())
    for i in range(4):
        log = (tmp_path / f"validate-{jobid}_{i}.out").read_text()
        assert f"validate shard {i}/4 (from Slurm array task {i}" in log, log
    shards = sorted((tmp_path / "val").glob("shard-*.json"))
    assert len(shards) == 4
    _same(merge_shards(shards), unsharded)
    merged = json.loads((tmp_path / "val" / "validation.json").read_text())
    expected = unsharded.to_dict()
    for key in ("pcs", "pcs_ci", "pgs", "pgs_ci", "mean_samples", "sd_samples", "macroreps"):
        assert json.dumps(merged[key]) == json.dumps(expected[key]), key
