"""Issue 15's failures in the pre-run checks, parameter tables and checkpoints, one test each.

Numbers refer to the issue's list. Every refusal must be one line on stderr with exit
code 2, before the first sample. Items 1 (a hang: sim_timeout on serial, processes and
``mpiexec -n 3``; the heartbeat without it), 2 (10^9 workers refused by the executor itself),
5 (no process outlives a killed run) and 6 (two SIGTERMs) are at the end.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rands
from rands import cli, preflight
from rands.checkpoint import Checkpointer, CheckpointDamaged, digest
from rands.errors import Interrupted, ParameterError
from tomlio import render

HAVE_MPI = shutil.which("mpiexec") is not None
try:
    import importlib.util
    HAVE_MPI = HAVE_MPI and importlib.util.find_spec("mpi4py") is not None
except ImportError:  # pragma: no cover
    HAVE_MPI = False


def write_config(path: Path, problem: dict, procedure: dict, run: dict | None = None) -> Path:
    path.write_text(render({"problem": problem, "procedure": procedure, "run": run or {}}))
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_refused(rc: int, err: str, *needles: str) -> str:
    """Exit code 2, one line on stderr (no traceback) containing every needle."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("rands: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


SMALL = {"name": "slippage", "k": 5, "delta": 0.5}
KN = {"name": "kn", "delta": 0.5, "n0": 10}


# ----------------------------------------------------------------------------- 3: edited checkpoint
def _interrupted_checkpoint(path: Path, spec: dict) -> None:
    class StopFirst(Checkpointer):
        def at_boundary(self, ctx, state, force=False):
            self.request_stop()
            super().at_boundary(ctx, state, force)

    with pytest.raises(Interrupted):
        rands.select("slippage", "kn", seed=3, problem_params={"k": 60, "delta": 0.5}, delta=0.5,
                     checkpoint=StopFirst(path, spec))


def _rewrite(path: Path, edit, *, rehash: bool = False) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    if rehash:
        arrays["sha256"] = np.array(digest(arrays))
    np.savez(path, **arrays)


SPEC = {"problem": "slippage", "procedure": "kn", "seed": 3}


def test_3_edited_checkpoint_arrays_are_refused(tmp_path):
    path = tmp_path / "c.npz"
    _interrupted_checkpoint(path, SPEC)
    Checkpointer(path, SPEC).load_verified()             # intact: verifies

    def sums_of_50(a):
        a["ctx__sums"] = a["ctx__sums"].copy()
        a["ctx__sums"][50] = 1e9
    _rewrite(path, sums_of_50)
    with pytest.raises(CheckpointDamaged, match=r"is damaged: its SHA-256 does not match .*delete it to "
                                                r"start over"):
        rands.select("slippage", "kn", seed=3, problem_params={"k": 60, "delta": 0.5}, delta=0.5,
                     checkpoint=Checkpointer(path, SPEC))


def test_3_damaged_checkpoint_through_the_cli_exits_2(tmp_path, capsys):
    ck = tmp_path / "run.npz"
    cfg = write_config(tmp_path / "c.toml", {"name": "slippage", "k": 60, "delta": 0.5},
                       {"name": "kn", "delta": 0.5}, {"seed": 3, "checkpoint": str(ck)})
    spec = {"problem": rands.problems.make("slippage", k=60, delta=0.5).spec(), "procedure": "kn",
            "params": rands.procedures.make("kn", delta=0.5).get_params(), "seed": 3}
    _interrupted_checkpoint(ck, spec)
    rc, out, err = run_cli(capsys, "run", cfg, "--resume")        # intact: resumes
    assert rc == 0, err
    _interrupted_checkpoint(ck, spec)
    _rewrite(ck, lambda a: a.update(ctx__n=a["ctx__n"] + 1))
    rc, out, err = run_cli(capsys, "run", cfg, "--resume")
    assert_refused(rc, err, f"checkpoint {ck} is damaged", "delete it to start over")


@pytest.mark.parametrize("damage,reason", [
    (lambda a: a.update(meta=np.array("{not json")), "not valid JSON"),
    (lambda a: a.pop("ctx__sumsq"), "'ctx__sumsq' is missing"),
    (lambda a: a.update(ctx__n=a["ctx__n"].astype(np.float32)), "'ctx__n' is float32"),
    (lambda a: a.update(meta=np.array(json.dumps({"format": "rands-checkpoint/1"}))), "key 'run_spec'"),
    (lambda a: a.update(ctx__next_rep=a["ctx__next_rep"][:3]), "different lengths"),
    (lambda a: a.update(meta=np.array("[1, 2]")), "not a JSON object"),
])
def test_8_bad_meta_missing_arrays_wrong_dtypes_are_damage(tmp_path, damage, reason):
    """Even with a recomputed hash (a tool that rewrote the file), the content is checked."""
    path = tmp_path / "c.npz"
    _interrupted_checkpoint(path, SPEC)
    _rewrite(path, damage, rehash=True)
    with pytest.raises(CheckpointDamaged, match=reason):
        Checkpointer(path, SPEC).restore(type("Ctx", (), {"k": 60})())


def test_8_hashless_and_unreadable_checkpoints(tmp_path):
    path = tmp_path / "c.npz"
    _interrupted_checkpoint(path, SPEC)
    _rewrite(path, lambda a: a.pop("sha256"))
    with pytest.raises(CheckpointDamaged, match="'sha256' array is missing"):
        Checkpointer(path, SPEC).load_verified()
    path.write_bytes(path.read_bytes()[:200])                   # truncated zip
    with pytest.raises(CheckpointDamaged, match="cannot be read as an NPZ"):
        Checkpointer(path, SPEC).load_verified()
    np.save(tmp_path / "one.npy", np.arange(3))
    os.replace(tmp_path / "one.npy", path)                      # a single .npy, not an archive
    with pytest.raises(CheckpointDamaged, match="one array"):
        Checkpointer(path, SPEC).load_verified()


# ----------------------------------------------------------------------------- 4: unwritable paths
def test_4_output_under_a_regular_file_is_refused_before_the_run(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    # a run that would take minutes: the refusal must come before it starts
    big = {"name": "slippage", "k": 20000, "delta": 0.001}
    cfg = write_config(tmp_path / "c.toml", big, {"name": "kn", "delta": 0.001},
                       {"output": str(blocker / "sub" / "r.json")})
    t0 = time.perf_counter()
    rc, out, err = run_cli(capsys, "run", cfg, "--json")
    assert time.perf_counter() - t0 < 5
    assert_refused(rc, err, "output", "regular file")
    assert out == ""
    cfg = write_config(tmp_path / "d.toml", big, {"name": "kn", "delta": 0.001},
                       {"checkpoint": str(blocker / "c.npz")})
    t0 = time.perf_counter()
    rc, out, err = run_cli(capsys, "run", cfg)
    assert time.perf_counter() - t0 < 5
    assert_refused(rc, err, "checkpoint", "regular file")
    rc, out, err = run_cli(capsys, "run", cfg, "--checkpoint", str(tmp_path))     # a folder
    assert_refused(rc, err, "is a folder")


def test_4_unwritable_folder_is_refused(tmp_path, capsys):
    if os.geteuid() == 0:
        folder = Path("/proc/1")          # root ignores permission bits; /proc refuses everyone
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
    cfg = write_config(tmp_path / "c.toml", SMALL, KN, {"output": str(folder / "r.json")})
    rc, out, err = run_cli(capsys, "run", cfg)
    assert_refused(rc, err, "output", "cannot be written")


@pytest.mark.parametrize("backend", ["processes", pytest.param("mpi", marks=pytest.mark.skipif(
    not HAVE_MPI, reason="needs mpiexec and mpi4py"))])
def test_4_bad_output_on_parallel_backends_exits_2_without_starting(tmp_path, backend):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    cfg = write_config(tmp_path / "c.toml", SMALL, KN,
                       {"backend": backend, "output": str(blocker / "r.json")})
    launcher = ["mpiexec", "-n", "3"] if backend == "mpi" else []
    env = dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([*launcher, sys.executable, "-m", "rands", "run", str(cfg)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode != 0
    msgs = [ln for ln in proc.stderr.splitlines() if ln.startswith("rands: error:")]
    assert msgs and all("regular file" in m for m in msgs), proc.stderr
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- 7: two runs, one path
_HOLDER = """
import sys, time
from rands.preflight import RunLock
lock = RunLock({"checkpoint": sys.argv[1], "output": sys.argv[2]}).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_7_second_run_on_the_same_paths_is_refused_with_the_pid(tmp_path, capsys):
    ck, out = tmp_path / "c.npz", tmp_path / "r.json"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(ck), str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = write_config(tmp_path / "c.toml", SMALL, KN, {"checkpoint": str(ck), "output": str(out)})
        rc, _, err = run_cli(capsys, "run", cfg)
        assert_refused(rc, err, f"(pid {holder.pid})", "in use by another rands run")
        other = write_config(tmp_path / "o.toml", SMALL, KN, {"output": str(out)})
        rc, _, err = run_cli(capsys, "run", other)                 # the output alone is locked too
        assert_refused(rc, err, f"output {str(out)!r}", f"pid {holder.pid}")
    finally:
        holder.kill()                   # SIGKILL: the kernel drops the lock, the file stays
        holder.wait()
    assert preflight.lock_path(ck).exists()
    rc, _, err = run_cli(capsys, "run", cfg)                       # a dead holder blocks nothing
    assert rc == 0, err
    assert json.loads(out.read_text())["best"] == 0
    assert not preflight.lock_path(ck).exists() and not preflight.lock_path(out).exists()


# ----------------------------------------------------------------------------- 8: tracebacks
@pytest.mark.parametrize("run,needles", [
    ({"checkpoint_interval": "x"}, ["[run]: checkpoint_interval must be", "got 'x'"]),
    ({"checkpoint": 5}, ["[run]: checkpoint must be a file path, got 5"]),
    ({"output": 5}, ["[run]: output must be a file path, got 5"]),
    ({"seed": -1}, ["[run]: seed must be an integer >= 0", "got -1"]),
    ({"seed": 1.5}, ["seed", "got 1.5"]),
    ({"seed": True}, ["seed", "got True"]),
    ({"seed": "abc"}, ["seed", "got 'abc'"]),
    ({"workers": 10**9, "backend": "processes"}, ["workers=1,000,000,000 exceeds", "oversubscribe = true"]),
    # 2 at the CLI: even with oversubscribe, 10^9 processes are refused by the memory estimate
    ({"workers": 10**9, "backend": "processes", "oversubscribe": True},
     ["1,000,000,000 workers x", "this machine has"]),
])
def test_8_run_table_values_are_one_line(tmp_path, capsys, run, needles):
    cfg = write_config(tmp_path / "c.toml", SMALL, KN, run)
    rc, _, err = run_cli(capsys, "run", cfg)
    assert_refused(rc, err, *needles)


@pytest.mark.parametrize("problem,procedure,needles", [
    ({"name": "normal", "means": "abc"}, KN, ["problem 'normal': means must be a list", "got 'abc'"]),
    ({"name": "slippage", "k": 10**12}, KN, ["needs about", "TiB of memory", "this machine has"]),
    (SMALL, {"name": "kn", "n0": 10**9}, ["needs about", "n0=1,000,000,000", "this machine has"]),
])
def test_8_problem_and_procedure_values_are_one_line(tmp_path, capsys, problem, procedure, needles):
    cfg = write_config(tmp_path / "c.toml", problem, procedure)
    rc, _, err = run_cli(capsys, "run", cfg)
    assert_refused(rc, err, *needles)


def test_8_binary_garbage_config(tmp_path, capsys):
    cfg = tmp_path / "g.toml"
    cfg.write_bytes(bytes(range(256)) * 4)
    rc, _, err = run_cli(capsys, "run", cfg)
    assert_refused(rc, err, "is not UTF-8 text")
    cfg.write_bytes(b"[problem]\nname = 'slippage'\nk = [1,\n")
    rc, _, err = run_cli(capsys, "run", cfg)
    assert_refused(rc, err, "is not valid TOML")


def test_8_debug_flag_shows_the_traceback(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.toml", SMALL, KN, {"seed": "abc"})
    rc, _, err = run_cli(capsys, "run", cfg, "--debug")
    assert rc == 2 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("rands: error:")


def test_8_unexpected_exceptions_are_one_line(tmp_path, capsys, monkeypatch):
    def boom(*a, **k):
        raise KeyError("surprise")
    monkeypatch.setattr(cli, "run_config", boom)
    cfg = write_config(tmp_path / "c.toml", SMALL, KN)
    rc, _, err = run_cli(capsys, "run", cfg)
    assert_refused(rc, err, "KeyError", "--debug")


def test_8_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["select", "--problem", "slippage", "--procedure", "kn", "--seed", "abc"])
    assert info.value.code == 2
    assert_refused(2, capsys.readouterr().err, "--seed", "invalid int value")


# ----------------------------------------------------------------------------- 9: silently accepted
@pytest.mark.parametrize("procedure,run,needles", [
    ({"name": "kn", "crn": "yes"}, {}, ["procedure 'kn': crn must be true or false, got 'yes'"]),
    ({"name": "kn", "delta": np.inf}, {}, ["procedure 'kn': delta must be a finite number", "got inf"]),
    (KN, {"progress": "yes"}, ["[run]: progress must be true or false, got 'yes'"]),
    (KN, {"workers": 4}, ["workers=4 needs backend = 'processes' or 'mpi'"]),
    ({"name": "kn", "alpha": 1e-300}, {}, ["procedure 'kn': alpha must be in [1e-10, 1)", "got 1e-300"]),
    # found while fuzzing: delta**2 underflowed to 0 and KN stopped after its first stage
    ({"name": "kn", "delta": 1e-300}, {}, ["procedure 'kn': delta must be in [1e-150, inf)", "got 1e-300"]),
    ({"name": "gsp", "rbar": 10**12}, {}, ["procedure 'gsp': rbar must be in [0, 1000000]"]),
    ({"name": "dc", "alpha_split": 1e-30}, {}, ["procedure 'dc': alpha*alpha_split = 5e-32 is below 1e-10"]),
    ({"name": "efg", "budget": 100, "n0": 5, "batch": 2**62}, {},
     ["procedure 'efg': batch=4,611,686,018,427,387,904 exceeds the greedy budget"]),
])
def test_9_silently_accepted_values_are_refused(tmp_path, capsys, procedure, run, needles):
    cfg = write_config(tmp_path / "c.toml", SMALL, procedure, run)
    rc, _, err = run_cli(capsys, "run", cfg)
    assert_refused(rc, err, *needles)


def test_9_output_outside_the_config_folder_is_named_in_the_header(tmp_path, capsys):
    (tmp_path / "a" / "b").mkdir(parents=True)
    cfg = write_config(tmp_path / "a" / "b" / "c.toml", SMALL, KN, {"output": "../../x.json"})
    cwd = os.getcwd()
    os.chdir(tmp_path / "a" / "b")
    try:
        rc, out, err = run_cli(capsys, "run", cfg)
    finally:
        os.chdir(cwd)
    assert rc == 0, err
    assert (tmp_path / "x.json").exists()
    header = err.strip().splitlines()
    assert len(header) == 1 and f"output {str(tmp_path / 'x.json')!r} (outside the config's folder" in header[0]
    rc, out, err = run_cli(capsys, "run", cfg, "--output", str(tmp_path / "a" / "b" / "in.json"))
    assert rc == 0 and "outside the config" not in err


def test_workers_above_cpus_allowed_with_oversubscribe():
    cpus = os.cpu_count() or 1
    preflight.check_workers("processes", cpus + 1, oversubscribe=True)
    preflight.check_workers("processes", cpus)
    with pytest.raises(ParameterError, match="oversubscribe"):
        preflight.check_workers("processes", cpus + 1)
    preflight.check_workers("serial", 1)
    with pytest.raises(ParameterError, match="serial backend"):
        preflight.check_workers("serial", 2)


def test_memory_estimate_names_the_estimate_and_the_machine():
    total, available = preflight.machine_memory()
    assert 0 < available <= total
    small = preflight.estimate_memory(1000, 20)
    assert small == 1000 * preflight.BYTES_PER_SYSTEM + 1000 * 20 * preflight.BYTES_PER_FIRST_STAGE_SAMPLE
    assert preflight.estimate_memory(1000, 20, budget=100) < small          # a budget caps the block
    assert preflight.estimate_memory(1000, 0, workers=2) == 1000 * 128 + 2 * (preflight.BYTES_PER_WORKER
                                                                            + 24 * 1000)
    preflight.check_memory(1000, 20)
    k = available // preflight.BYTES_PER_SYSTEM + 1                      # just over the line
    with pytest.raises(ParameterError, match=r"needs about .* this machine has .* available"):
        preflight.check_memory(k)
    with pytest.raises(ParameterError, match="needs about"):          # select refuses before allocating
        rands.select("slippage", "kn", seed=0, problem_params={"k": 10**12})


def test_sigterm_mid_run_resumes_through_the_lock(tmp_path):
    """A run stopped by SIGTERM releases its locks; --resume then continues (same paths)."""
    ck, out = tmp_path / "c.npz", tmp_path / "r.json"
    cfg = write_config(tmp_path / "c.toml", {"name": "slippage", "k": 1000, "delta": 0.02},
                       {"name": "kn", "delta": 0.02}, {"seed": 1, "checkpoint": str(ck), "output": str(out),
                                                        "checkpoint_interval": 0.2})
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "rands", "run", str(cfg)], stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.time() + 60
    while not ck.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run ended before SIGTERM arrived (fast machine)")
    assert proc.returncode == 3, err
    assert not preflight.lock_path(ck).exists()
    done = subprocess.run([sys.executable, "-m", "rands", "run", str(cfg), "--resume"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["best"] == 0


BACKENDS = ["processes", pytest.param("mpi", marks=pytest.mark.skipif(not HAVE_MPI,
                                                                     reason="needs mpiexec and mpi4py"))]


def _launch(cfg: Path, backend: str, *extra: str, cwd: Path) -> subprocess.CompletedProcess:
    launcher = ["mpiexec", "-n", "3"] if backend == "mpi" else []
    env = dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    return subprocess.run([*launcher, sys.executable, "-m", "rands", "run", str(cfg), *extra],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


@pytest.mark.parametrize("backend", BACKENDS)
def test_7_lock_and_3_damage_on_parallel_backends(tmp_path, backend):
    """A locked output and a damaged checkpoint end a processes or 3-rank MPI run with exit 2
    and one line per rank that prints, no traceback, no hang; a free path then runs."""
    ck, out = tmp_path / "c.npz", tmp_path / "r.json"
    run = {"seed": 3, "backend": backend, "checkpoint": str(ck), "output": str(out),
           **({"workers": 2} if backend == "processes" else {})}
    cfg = write_config(tmp_path / "c.toml", {"name": "slippage", "k": 60, "delta": 0.5},
                       {"name": "kn", "delta": 0.5}, run)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(ck), str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = _launch(cfg, backend, cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("rands: error:")]
    assert proc.returncode != 0 and errors and "Traceback" not in proc.stderr, proc.stderr
    assert all(f"pid {holder.pid}" in e for e in errors), proc.stderr
    spec = {"problem": rands.problems.make("slippage", k=60, delta=0.5).spec(), "procedure": "kn",
            "params": rands.procedures.make("kn", delta=0.5).get_params(), "seed": 3}
    _interrupted_checkpoint(ck, spec)
    _rewrite(ck, lambda a: a.update(ctx__sums=a["ctx__sums"] * 2))
    proc = _launch(cfg, backend, "--resume", cwd=tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("rands: error:")]
    assert proc.returncode != 0 and errors and "Traceback" not in proc.stderr, proc.stderr
    assert all("is damaged" in e and "delete it to start over" in e for e in errors), proc.stderr
    ck.unlink()
    proc = _launch(cfg, backend, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["best"] == 0
    assert not preflight.lock_path(ck).exists() and not preflight.lock_path(out).exists()


# ----------------------------------------------------------------------------- 1, 2, 5, 6: hangs and signals
_HANG_PROBLEM = '''
import os
import time

import numpy as np

from rands.problems.normal import Slippage


class HangSlippage(Slippage):
    """Slippage whose system 3 hangs (sleep 10^6 s) from replication $HANG_FROM on; every call
    costs 2 ms more, so that executors ship blocks to their workers."""

    name = "hang-slippage"

    def simulate(self, systems, reps, streams):
        time.sleep(0.002)
        hit = (np.asarray(systems) == 3) & (np.asarray(reps) >= int(os.environ.get("HANG_FROM", "0")))
        if hit.any():
            if os.environ.get("HANG_MARKER"):
                open(os.environ["HANG_MARKER"], "w").close()
            time.sleep(1e6)
        return super().simulate(systems, reps, streams)
'''
_RUNNER = '''
import sys

import rands

rands.problems.register("hang-slippage", "hangprob:HangSlippage")
from rands import cli  # noqa: E402

if __name__ == "__main__":          # worker processes import this file again
    sys.exit(cli.main(sys.argv[1:]))
'''


def _live_in_session(sid: int) -> list[str]:
    """Processes of session ``sid`` that are not zombies: 'pid command' each."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(f"{d.name} {cmd[:120]}")
    return out


def _await_gone(sid: int, seconds: float = 20.0) -> list[str]:
    deadline = time.time() + seconds
    while (left := _live_in_session(sid)) and time.time() < deadline:
        time.sleep(0.2)
    return left


def _hang_run(tmp_path: Path, backend: str, run: dict, *, hang_from: int = 0) -> subprocess.Popen:
    """Start ``rands run`` (own session) on a problem whose system 3 hangs from ``hang_from`` on."""
    (tmp_path / "hangprob.py").write_text(_HANG_PROBLEM)
    (tmp_path / "runner.py").write_text(_RUNNER)
    run = {"seed": 1, "backend": backend, **({"workers": 2} if backend == "processes" else {}), **run}
    cfg = write_config(tmp_path / "h.toml", {"name": "hang-slippage", "k": 10, "delta": 0.1},
                       {"name": "kn", "delta": 0.1}, run)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", HANG_FROM=str(hang_from),
               HANG_MARKER=str(tmp_path / "hanging"))
    launcher = ["mpiexec", "-n", "3"] if backend == "mpi" else []
    return subprocess.Popen([*launcher, sys.executable, str(tmp_path / "runner.py"), "run", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            start_new_session=True)


def _await_marker(proc: subprocess.Popen, marker: Path, seconds: float = 240.0) -> None:
    deadline = time.time() + seconds
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the simulation never reached the hanging system"
        time.sleep(0.05)


@pytest.mark.parametrize("backend", ["serial", *BACKENDS])
def test_1_hang_ends_the_run_naming_system_replication_rank_checkpoint_kept(tmp_path, backend):
    """sleep(1e6) on system 3 from replication 25 on, sim_timeout = 2 s per call: the run ends with
    one line naming system 3 (and the rank off serial) within the stated limit, the checkpoint of
    the last boundary verifies, and no process of the run is left."""
    ck = tmp_path / "c.npz"
    proc = _hang_run(tmp_path, backend, {"sim_timeout": 2.0, "checkpoint": str(ck), "checkpoint_interval": 0.0},
                     hang_from=25)
    try:
        _await_marker(proc, tmp_path / "hanging")
        t0 = time.time()
        _, err = proc.communicate(timeout=120)
        detected = time.time() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines = [ln for ln in err.splitlines() if ln.startswith("rands: error:")]
    assert proc.returncode != 0 and lines and "Traceback" not in err, err
    assert "sim_timeout = 2 s per call" in lines[0] and "system 3, replication" in lines[0], err
    if backend != "serial":
        assert ", rank " in lines[0], err
    else:
        assert proc.returncode == 2 and len(lines) == 1, err
    # the stated limit: 2 s, plus at most 10 s to name the pair in a block (the coordinator's
    # heartbeat, 2 x 2 + 20 s, is the backstop), plus the shutdown
    assert detected < 2 + 10 + 15, detected
    arrays, meta = Checkpointer(ck, {}).load_verified()
    assert meta["total"] > 0 and arrays["ctx__next_rep"].max() >= 20         # past the first stage
    assert _await_gone(proc.pid) == []


def _hang_fn(systems, reps, streams):
    """Slippage (k = 10) whose system 3 sleeps 10^6 s; 2 ms a call (worth shipping to workers)."""
    time.sleep(0.002)
    if (np.asarray(systems) == 3).any():
        time.sleep(1e6)
    return _SLIPPAGE.simulate(systems, reps, streams)


_SLIPPAGE = rands.problems.make("slippage", k=10, delta=0.5)


def test_1_default_heartbeat_on_processes_without_sim_timeout():
    """No sim_timeout: the coordinator's heartbeat (here a 1 s floor instead of 300 s) names the
    block, the rank and the rule, and the hung worker is killed on close."""
    from rands.errors import SimulationError
    from rands.parallel import make_executor
    prob = rands.problems.from_vectorized(_hang_fn, 10)
    ex = make_executor("processes", 2, hang_floor_s=1.0)
    t0 = time.time()
    with pytest.raises(SimulationError, match=r"no reply for .* the limit is .* at least 1 s\): the "
                                              r"simulation hangs \(system \d+, replication \d+, rank [12]\)"):
        with ex:
            rands.select(prob, "kn", seed=0, delta=0.5, executor=ex)
    assert time.time() - t0 < 30
    assert not any(p.is_alive() for p in ex._procs)


_HUGE_POOL = """
import sys, time
from rands.parallel.processes import ProcessExecutor
from rands.errors import ParameterError
t0 = time.time()
try:
    ProcessExecutor(10**9, oversubscribe=sys.argv[1] == "1")
except ParameterError as exc:
    print(f"{time.time() - t0:.2f} {exc}")
"""


@pytest.mark.parametrize("oversubscribe,needle", [("0", "oversubscribe = true"), ("1", "needs about")])
def test_2_a_billion_processes_are_refused_at_once_by_the_executor(oversubscribe, needle):
    """The executor itself (not only the CLI) refuses 10^9 workers before allocating anything
    (it used to hang building per-worker lists)."""
    proc = subprocess.run([sys.executable, "-c", _HUGE_POOL, oversubscribe], capture_output=True, text=True,
                          timeout=120)
    secs, _, message = proc.stdout.strip().partition(" ")
    assert needle in message, proc.stdout + proc.stderr
    assert float(secs) < 5


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_5_killing_a_run_with_a_hung_worker_leaves_no_process(tmp_path, how):
    """A processes run whose worker hangs (no sim_timeout; the heartbeat's 300 s floor not reached),
    killed (SIGKILL) or stopped (SIGTERM): the workers, the forkserver and the resource tracker all
    end with it (SIGTERM: exit 3 after a clean shutdown)."""
    proc = _hang_run(tmp_path, "processes", {})
    try:
        _await_marker(proc, tmp_path / "hanging")
        assert len(_live_in_session(proc.pid)) >= 4          # coordinator, tracker, forkserver, workers
        proc.send_signal(how)
        _, err = proc.communicate(timeout=120)
        left = _await_gone(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert left == [], left
    if how == signal.SIGTERM:
        assert proc.returncode == 3 and "run interrupted (SIGTERM)" in err, err
        assert "leaked" not in err and "Traceback" not in err, err


def test_6_two_sigterms_50ms_apart_exit_3_no_leaks(tmp_path):
    """The second SIGTERM arrives while the first one's checkpoint is written or the workers are
    stopped: it waits; exit 3, no leaked semaphores, nothing left, the checkpoint verifies and
    resumes to the uninterrupted result."""
    ck = tmp_path / "c.npz"
    cfg = write_config(tmp_path / "c.toml", {"name": "slippage", "k": 1000, "delta": 0.02},
                       {"name": "kn", "delta": 0.02},
                       {"seed": 1, "backend": "processes", "workers": 2, "checkpoint": str(ck),
                        "checkpoint_interval": 0.2})
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "rands", "run", str(cfg), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not ck.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        left = _await_gone(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode == 0:
        pytest.skip("the run ended before the signals arrived (fast machine)")
    assert proc.returncode == 3, err
    assert "leaked" not in err and "Traceback" not in err, err
    assert left == [], left
    Checkpointer(ck, {}).load_verified()
    serial = write_config(tmp_path / "s.toml", {"name": "slippage", "k": 1000, "delta": 0.02},
                          {"name": "kn", "delta": 0.02}, {"seed": 1, "checkpoint": str(ck)})
    resumed = subprocess.run([sys.executable, "-m", "rands", "run", str(serial), "--resume", "--json"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    fresh = rands.select("slippage", "kn", seed=1, problem_params={"k": 1000, "delta": 0.02}, delta=0.02)
    got = json.loads(resumed.stdout)
    assert got["best"] == fresh.best and got["total_samples"] == fresh.total_samples
