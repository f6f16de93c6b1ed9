"""The progress bar: totals and estimates, the contract with the sampling context, the CLI default."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios

import numpy as np
import pytest

import rands
from rands import progress as progress_mod
from rands.cli import run_config
from rands.progress import ProgressBar, launcher_rank, launcher_size


def _text(buf: io.StringIO) -> str:
    return buf.getvalue().replace("\r", "\n")


def test_fixed_total_counts_latest_total_and_shows_contention():
    buf = io.StringIO()
    bar = ProgressBar(1000, desc="ocba", file=buf, mininterval=0)
    bar(100, simulated=100)
    bar(400, simulated=450, contention=7)
    bar(400)                                  # repeated total: no double count
    assert bar.count == 400 and bar._bar.n == 400 and bar.total == 1000
    assert bar.contention == 7 and bar.simulated == 450
    bar(1000, estimate=5.0)                   # an estimate never overrides a known budget
    assert bar.total == 1000
    bar.close()
    bar(1000)                                 # harmless after close
    out = _text(buf)
    assert "40%" in out and "contention=7" in out and "simulated=450" in out and "ocba" in out


def test_fixed_precision_follows_the_running_estimate():
    buf = io.StringIO()
    bar = ProgressBar(None, file=buf, mininterval=0)
    bar(50)                                   # no estimate yet: no total, no percentage
    assert bar.total is None
    bar(100, estimate=400.0, contention=20)
    assert bar.total == 400
    bar(300, estimate=250.0)                  # an estimate already exceeded is raised to the count
    assert bar.total == 300
    bar(350, unknown_key=1)                   # unknown keys are ignored
    assert bar.total == 350 and bar.count == 350
    bar.close()
    assert "25%" in _text(buf)


def test_select_builds_the_bar_with_the_budget(monkeypatch):
    made = []

    class Spy(ProgressBar):
        def __init__(self, total=None, **kw):
            kw["file"] = io.StringIO()
            super().__init__(total, **kw)
            made.append(self)

    monkeypatch.setattr(progress_mod, "ProgressBar", Spy)
    res = rands.select("slippage", "ocba", seed=1, problem_params={"k": 10}, budget=500, n0=10,
                       progress=True)
    assert made[0].fixed_total == 500 and made[0].count == res.total_samples == 500
    res = rands.select("slippage", "kn", seed=1, problem_params={"k": 10}, alpha=0.05, delta=0.5,
                       n0=10, progress=True)
    assert made[1].fixed_total is None and made[1].count == res.total_samples


def test_bar_is_rank_zero_only(monkeypatch):
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("PMI_SIZE", "2")
    assert launcher_rank() == 1 and launcher_size() == 2
    made = []

    class Spy(ProgressBar):
        def __init__(self, total=None, **kw):
            made.append(kw.get("disable"))
            super().__init__(total, **kw)

    monkeypatch.setattr(progress_mod, "ProgressBar", Spy)
    rands.select("slippage", "ocba", seed=1, problem_params={"k": 4}, budget=100, n0=5, progress=True)
    assert made == [True]
    monkeypatch.delenv("PMI_RANK")
    monkeypatch.delenv("PMI_SIZE")
    assert launcher_rank() == 0 and launcher_size() == 1


def test_plain_callbacks_and_contention_record():
    seen = []
    res = rands.select("slippage", "kn", seed=3, problem_params={"k": 20}, alpha=0.05, delta=0.5,
                       n0=10, progress=lambda total: seen.append(total))
    assert seen and seen[-1] == res.total_samples and seen == sorted(seen)
    c = res.contention
    assert c and c[-1][1] == 1 and all(a[0] <= b[0] and a[1] > b[1] for a, b in zip(c, c[1:]))
    again = rands.SelectionResult.from_dict(res.to_dict())
    assert again.contention == c


def test_serial_backend_under_mpi_runs_on_rank_zero_only(monkeypatch, capsys):
    cfg = {"problem": {"name": "slippage", "k": 4}, "procedure": {"name": "ocba", "budget": 100, "n0": 5},
           "run": {"seed": 1}}
    monkeypatch.setenv("PMI_SIZE", "3")
    monkeypatch.setenv("PMI_RANK", "2")
    assert run_config({k: dict(v) for k, v in cfg.items()}) is None
    monkeypatch.setenv("PMI_RANK", "0")
    res = run_config({k: dict(v) for k, v in cfg.items()})
    assert res is not None and res.total_samples == 100
    assert "backend 'serial' under 3 MPI ranks: running on rank 0 only" in capsys.readouterr().err


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="needs mpiexec")
def test_mpiexec_serial_prints_once():
    out = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "rands", "select", "--problem",
                          "slippage", "-P", "k=4", "--procedure", "ocba", "-p", "budget=100", "--seed", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("ocba: best system") == 1
    assert "running on rank 0 only" in out.stderr


def _run_cli(cfg_path, *extra, tty: bool):
    cmd = [sys.executable, "-m", "rands", "run", str(cfg_path), *extra]
    if not tty:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        return out.returncode, out.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))   # a 120 x 30 terminal
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL,
                            )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_rands_run_bar_on_a_terminal_only(tmp_path):
    cfg = tmp_path / "ocba.toml"
    cfg.write_text('[problem]\nname = "slippage"\nk = 50\n'
                   '[procedure]\nname = "ocba"\nbudget = 20000\nn0 = 10\nincrement = 20\n[run]\nseed = 1\n')
    rc, err = _run_cli(cfg, tty=True)
    assert rc == 0 and "ocba:" in err and "%|" in err and "20.0k" in err
    rc, err = _run_cli(cfg, "--quiet", tty=True)
    assert rc == 0 and "%|" not in err
    rc, err = _run_cli(cfg, tty=False)
    assert rc == 0 and "%|" not in err
    rc, err = _run_cli(cfg, "--progress", tty=False)     # forced: mpiexec/srun pipe rank 0's stderr
    assert rc == 0 and "%|" in err and "20.0k" in err


def test_kn_remaining_closed_form():
    from rands.procedures.fixed_precision.kn_engine import KNMatches

    def match(sum1: float, winner: int = -1) -> KNMatches:
        # two systems, n0 = 3: S^2 of the difference = |(1, 0, -1)|^2 / 2 = 1; h^2 = 4; r = 10
        return KNMatches(rows=np.arange(2), ptr=np.array([0, 2]), h2=np.array([4.0]),
                         base=np.array([-1]), r_close=np.array([100]), r=np.array([10]),
                         winner=np.array([winner]), c=np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]]),
                         a=np.array([2.0, 0.0]), sums=np.array([10.0, sum1]),
                         alive=np.ones(2, dtype=bool), screened=np.array([True]))

    # gap 0: both stay to r = h^2 S^2 / delta^2 = 4 / 0.25 = 16, 6 more each
    assert progress_mod.kn_remaining(match(10.0), 0.5, 3) == 12
    # gap 0.1: r = 4 / (0.5 * 0.7) = 11.43 for the rival, the leader until then
    assert progress_mod.kn_remaining(match(9.0), 0.5, 3) == round(2 * (4 / 0.35 - 10))
    assert progress_mod.kn_remaining(match(7.5), 0.5, 3) == 0      # gap 0.25: r = 8 < 10, done
    assert progress_mod.kn_remaining(match(10.0, winner=0), 0.5, 3) == 0   # a decided match


@pytest.mark.parametrize("name, params", [
    ("kn", dict(alpha=0.05, delta=0.5, n0=10)),
    ("kt", dict(alpha=0.05, delta=0.5, n0=10, g=5)),
    ("rinott", dict(alpha=0.05, delta=0.5, n0=10)),
    ("gsp", dict(alpha1=0.025, alpha2=0.025, delta=0.5, n1=10, n0=0, rbar=10, beta=20)),
    ("pass", dict(alpha=0.05, n0=10, max_samples=2000)),
    ("dc", dict(alpha=0.05, delta=0.5, n0=10)),
    ("p3c", dict(alpha=0.05, delta=0.5, n0=10)),
])
def test_fixed_precision_bar_has_a_total_before_the_end(name, params):
    calls = []
    buf = io.StringIO()
    bar = ProgressBar(None, file=buf, mininterval=0)

    def spy(total, **info):
        bar(total, **info)
        calls.append((int(total), bar.total, info.get("contention")))

    res = rands.select("mdm", name, seed=1, problem_params={"k": 50}, progress=spy, **params)
    bar.close()
    mid = [(t, est) for t, est, _ in calls if t < res.total_samples]
    assert mid and all(est is not None for t, est in mid[1:]), calls[:4]   # a total from stage 1 on
    first = next(est for t, est in mid if est is not None and t > 0)
    assert res.total_samples / 4 <= first <= 20 * res.total_samples, (first, res.total_samples)
    if name == "rinott":
        assert first == res.total_samples             # known exactly once stage 1 is in
    assert "%|" in buf.getvalue() and "<" in buf.getvalue()     # percentage and ETA drawn
    if name not in ("rinott",):
        assert any(c is not None for _, _, c in calls)            # systems in contention shown
