"""The HPC workflow under a running Slurm (a private one-node cluster, tests/slurm_cluster.py).

Every job runs a script from examples/slurm/ (the scripts docs/parallel.md shows) and its
result is compared with an uninterrupted serial run of the same configuration: best,
per-system sample sizes, means (exact floats) and total samples must be identical.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "examples" / "slurm"
KEYS = ("best", "sample_sizes", "means", "total_samples")

# KN on a 20-system slippage configuration: a second of work
SMALL = """
[problem]
name = "slippage"
k = 20
delta = 0.5

[procedure]
name = "kn"
alpha = 0.05
delta = 0.5
n0 = 10

[run]
seed = 7
"""

# KN on 20 slippage systems (sleepy-slippage, a plugin problem from tests/slurm_problems.py):
# ~21k samples, a second or two with no wait; with SLOW (10 ms a sample, no CPU) it would last
# minutes on two ranks, so a signal lands mid-run however busy the machine, and it has a stage
# boundary (where SIGTERM is honoured) every few tenths of a second
LONG = """
[problem]
name = "sleepy-slippage"
k = 20
delta = 0.1

[procedure]
name = "kn"
alpha = 0.05
delta = 0.1
n0 = 10

[run]
seed = 3
"""
SLOW = {"RANDS_TEST_SAMPLE_WAIT": "0.01"}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict:
    """PYTHONPATH of a folder holding tests/slurm_problems.py and a dist-info whose
    entry points declare its problems: what an installed user package looks like."""
    import slurm_problems
    folder = tmp_path_factory.mktemp("plugin")
    shutil.copy(slurm_problems.__file__, folder / "slurm_problems.py")
    info = folder / "rands_slurm_test_problems-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rands-slurm-test-problems\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[rands.problems]\n" + "".join(f"{k} = {v}\n" for k, v in slurm_problems.ENTRY_POINTS.items()))
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def _config(folder: Path, name: str, body: str, **run) -> Path:
    lines = [body.rstrip()] + [f"{k} = {json.dumps(v)}" for k, v in run.items()]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _record(d: dict) -> dict:
    """The compared fields; means as exact float hex (nan == nan here)."""
    rec = {k: d[k] for k in KEYS}
    rec["means"] = [float(m).hex() for m in rec["means"]]
    return rec


def _serial(folder: Path, name: str, body: str, env: dict | None = None) -> subprocess.Popen:
    """The uninterrupted serial reference run (started in the background)."""
    cfg = _config(folder, f"{name}-serial", body)
    return subprocess.Popen([sys.executable, "-m", "rands.cli", "run", str(cfg), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def _collect(proc: subprocess.Popen, full: bool = False) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out) if full else _record(json.loads(out))


def _job_output(folder: Path, jobid: str) -> str:
    path = folder / f"rands-{jobid}.out"
    return path.read_text() if path.exists() else ""


def _exit(info: dict) -> str:
    return info.get("ExitCode", "?")


@pytest.mark.parametrize("launcher", ["srun", "mpiexec"])
def test_sbatch_two_ranks_equals_serial(slurm, tmp_path, launcher):
    """`sbatch run.sbatch CONFIG srun|mpiexec` with --ntasks=2: one 2-rank MPI world (rank 0
    coordinates and simulates, rank 1 simulates) and the serial result, bit for bit."""
    ref = _serial(tmp_path, "small", SMALL)
    cfg = _config(tmp_path, "small", SMALL, backend="mpi")
    jobid = slurm.sbatch(SCRIPTS / "run.sbatch", str(cfg), launcher, cwd=tmp_path)
    info = slurm.wait(jobid, timeout=180)
    log = _job_output(tmp_path, jobid)
    assert info["JobState"] == "COMPLETED" and _exit(info) == "0:0", (info, log)
    result = json.loads((tmp_path / "results" / "small.json").read_text())
    assert result["accounting"]["backend"] == "mpi" and result["accounting"]["workers"] == 2, result["accounting"]
    assert len(result["accounting"]["sim_time"]) == 2
    printed = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(printed) == 1, log                      # only rank 0 prints
    assert _record(printed[0]) == _record(result)
    assert _record(result) == _collect(ref)


def _signal_times(slurm, jobid: str) -> list[float]:
    """When slurmctld sent job ``jobid`` its --signal warning (epoch s, from its log)."""
    text = (slurm.log / "slurmctld.log").read_text(errors="replace")
    found = re.findall(rf"^\[(\S+)\] debug:  send_job_warn_signal: warning signal 15 to JobId={jobid}\b",
                       text, re.M)
    return [datetime.fromisoformat(t).timestamp() for t in found]


def _ckpt_total(path: Path) -> int:
    """Samples used so far, from the checkpoint's metadata."""
    import numpy as np
    with np.load(path, allow_pickle=False) as data:
        return int(json.loads(str(data["meta"][()]))["total"])


def _wait_for(slurm, job: str, predicate, timeout: float, what: str, folder: Path) -> None:
    """Wait until ``predicate()`` holds while ``job`` runs; fails at once if the job ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if job not in slurm.jobs():
            if predicate():
                return
            raise AssertionError(f"job {job} ended before {what}: {slurm.job(job)}\n"
                                 f"{_job_output(folder, job)}\n{slurm.log_lines(job)}")
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {slurm.job(job)}\n"
                         f"{_job_output(folder, job)}")


def _resumed_from(log: str) -> list[int]:
    """The sample counts of the "resuming from N samples" lines of a job's output."""
    return [int(n) for n in re.findall(r"resuming from (\d+) samples", log)]


def test_time_limit_signal_then_requeue_scancel_then_resubmit(slurm, tmp_path, plugin):
    """run.sbatch as documented (--time=04:00:00, --signal=TERM@180), slow samples. Once rands
    runs (its first checkpoint is on disk) the time limit is lowered to 3 minutes, so
    slurmctld's next time-limit test (within 30 s) sends the --signal warning: rank 0 writes
    the checkpoint and the job ends with exit code 3. `scontrol requeue` reruns the job, which
    resumes from that checkpoint, and `scancel --signal=TERM` stops it the same way. A
    resubmission (fast samples) resumes and ends with the uninterrupted serial result."""
    ref = _serial(tmp_path, "long", LONG, plugin)
    cfg = _config(tmp_path, "long", LONG, backend="mpi", checkpoint_interval=0.5)
    ckpt = tmp_path / "ckpt" / "long.npz"
    script = SCRIPTS / "run.sbatch"
    slow = {**plugin, **SLOW}
    log = lambda job: _job_output(tmp_path, job)   # noqa: E731

    t0 = time.time()
    job1 = slurm.sbatch(script, str(cfg), cwd=tmp_path, env=slow)
    _wait_for(slurm, job1, ckpt.exists, 120, "rands to start and write its first checkpoint", tmp_path)
    lowered = time.time()                      # (before: the next test may come at once)
    slurm.cmd("scontrol", "update", f"JobId={job1}", "TimeLimit=3")
    phases = {"job 1 running": lowered - t0}
    info1 = slurm.wait(job1, timeout=100)        # next time-limit test <= 30 s, then one stage
    log1 = log(job1)
    assert _exit(info1) == "3:0", (info1, log1)
    assert "rands: run interrupted; checkpoint written" in log1, log1
    assert not (tmp_path / "results" / "long.json").exists()
    total1 = _ckpt_total(ckpt)
    warned = _signal_times(slurm, job1)
    assert len(warned) == 1, f"warnings to job {job1} at {warned} (one expected)"
    signalled = warned[0]
    written = ckpt.stat().st_mtime
    assert 0 <= signalled - lowered < 35, signalled - lowered     # at slurmctld's next test
    assert 0 <= written - signalled < 10, written - signalled     # SIGTERM to checkpoint on disk

    phases["job 1 interrupted"] = time.time() - t0
    mtime = ckpt.stat().st_mtime
    slurm.wait_steps_gone(job1)                  # the requeued job reuses step ids 0 and batch
    slurm.cmd("scontrol", "requeue", job1)
    # the documented limit again (no second warning), and no requeue delay
    slurm.cmd("scontrol", "update", f"JobId={job1}", "TimeLimit=04:00:00", "StartTime=now")
    _wait_for(slurm, job1, lambda: ckpt.stat().st_mtime > mtime, 90,
              "the requeued run to write a checkpoint", tmp_path)
    t_cancel = time.time()
    phases["requeued job running"] = t_cancel - t0
    slurm.cmd("scancel", "--signal=TERM", job1)
    info2 = slurm.wait(job1, timeout=60)
    log2 = log(job1)
    assert info2.get("Restarts") == "1" and _exit(info2) == "3:0", (info2, log2)
    assert log2.count("rands: run interrupted; checkpoint written") == 2, log2   # --open-mode=append
    assert _resumed_from(log2) == [total1], log2
    assert len(_signal_times(slurm, job1)) == 1     # stopped by scancel, not by a second warning
    cancel_to_ckpt = ckpt.stat().st_mtime - t_cancel
    assert cancel_to_ckpt < 10, cancel_to_ckpt
    total2 = _ckpt_total(ckpt)
    assert total2 > total1                       # the requeued run went on from the checkpoint

    phases["requeued job interrupted"] = time.time() - t0
    job3 = slurm.sbatch(script, str(cfg), cwd=tmp_path, env=plugin)
    info3 = slurm.wait(job3, timeout=120)
    log3 = log(job3)
    assert info3["JobState"] == "COMPLETED" and _exit(info3) == "0:0", (info3, log3)
    assert _resumed_from(log3) == [total2], log3
    phases["job 3 done"] = time.time() - t0
    result = json.loads((tmp_path / "results" / "long.json").read_text())
    assert _record(result) == _collect(ref)
    phases["serial done"] = time.time() - t0
    assert result["total_samples"] > total2
    print(f"SIGTERM at the time limit -> checkpoint written: {written - signalled:.2f} s; "
          f"scancel -> checkpoint: {cancel_to_ckpt:.2f} s; samples at the two checkpoints "
          f"{total1}, {total2} of {result['total_samples']}; "
          f"phases (s) {({k: round(v, 1) for k, v in phases.items()})}")


FAULTY = """
[problem]
name = "sleepy-faulty-slippage"
k = 40
mode = "raise"

[procedure]
name = "equal"
budget = 80000

[run]
seed = 7
"""


def test_failing_simulation_names_system_replication_rank(slurm, tmp_path, plugin):
    """A simulation that raises on rank 1 of the 2-rank job (run.sbatch with srun): the job
    fails within seconds and its output names the system, the replication and the rank."""
    cfg = _config(tmp_path, "faulty", FAULTY, backend="mpi")
    t0 = time.time()
    jobid = slurm.sbatch(SCRIPTS / "run.sbatch", str(cfg), cwd=tmp_path,
                         env={**plugin, "RANDS_TEST_SAMPLE_WAIT": "1e-5"})   # 0.8 s of samples
    info = slurm.wait(jobid, timeout=120)
    log = _job_output(tmp_path, jobid)
    assert info["JobState"] == "FAILED" and _exit(info) != "0:0", (info, log)
    assert re.search(r"RuntimeError: injected fault \(system 0, replication \d+, rank 1\)", log), log
    assert time.time() - t0 < 60
    assert not (tmp_path / "results" / "faulty.json").exists()


SWEEP = """
[problem]
name = "slippage"
k = 10
delta = {delta}

[procedure]
name = "rinott"
alpha = 0.05
delta = {delta}
n0 = 10

[run]
seed = 5
"""


def test_sweep_array_equals_serial_runs(slurm, tmp_path):
    """`sbatch --array=0-2 sweep-array.sbatch DIR`: task I runs config I of DIR/*.toml; each
    result equals a serial run of that config."""
    configs = tmp_path / "configs"
    configs.mkdir()
    refs = {}
    for delta in (0.3, 0.4, 0.5):
        name = f"delta{delta}"
        _config(configs, name, SWEEP.format(delta=delta))
        refs[name] = _serial(tmp_path, name, SWEEP.format(delta=delta))
    jobid = slurm.sbatch(SCRIPTS / "sweep-array.sbatch", str(configs), cwd=tmp_path)
    slurm.wait(jobid, timeout=180)
    states = slurm.array_states(jobid)
    assert sorted(states) == ["0", "1", "2"] and all(s == ("COMPLETED", "0:0") for s in states.values()), states
    for task in range(3):
        log = (tmp_path / f"sweep-{jobid}_{task}.out").read_text()
        assert f"rands: run shard {task}/3" in log, log
    for name, ref in refs.items():
        got = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        assert _record(got) == _collect(ref), name


def test_docs_show_the_scripts_the_tests_run():
    """docs/parallel.md shows examples/slurm/*.sbatch verbatim."""
    doc = (ROOT / "docs" / "parallel.md").read_text()
    for script in sorted(SCRIPTS.glob("*.sbatch")):
        assert script.read_text().strip() in doc, f"{script.name} differs from docs/parallel.md"


def test_cluster_is_private(slurm):
    """The cluster reads only its own config and munge socket; the system ones are untouched."""
    conf = slurm.conf.read_text()
    assert f"AuthInfo=socket={slurm.socket}" in conf and "ProctrackType=proctrack/linuxproc" in conf
    assert str(slurm.root) in slurm.cmd("scontrol", "show", "config").stdout
    assert slurm.cmd("sinfo", "-h", "-o", "%c").stdout.strip() == "2"
