"""Checkpoints: NPZ round trip, spec check, stop requests, resume equality (API and CLI + SIGTERM)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rands
from rands.checkpoint import Checkpointer
from rands.errors import Interrupted, ParameterError
from rands.parallel.check import CASES, procedure_of
from rands.sampling import SamplingContext
from rands.streams import Streams


def _ctx(k=5, ckpt=None):
    return SamplingContext(rands.problems.make("mdm", k=k), Streams(1), checkpointer=ckpt)


def test_round_trip_and_format(tmp_path):
    path = tmp_path / "sub" / "run.npz"
    spec = {"problem": {"name": "mdm", "k": 5}, "procedure": "kn", "seed": (1, 2)}
    ck = Checkpointer(path, spec, interval_s=3600)
    ctx = _ctx(ckpt=ck)
    assert ctx.restored is None and ck.previous_wall_time == 0.0
    ctx.draw(np.arange(5), 7)
    ctx.log("stage1", note="x", value=np.float64(1.5))
    state = {"alive": np.array([True, False, True, True, False]), "r": 7, "h2": 3.25, "done": False,
             "label": "kn", "none": None, "c": np.arange(10.0).reshape(5, 2), "i": np.int64(4)}
    ctx.boundary(state)                      # not due: interval not passed, no stop
    assert not path.exists()
    ctx.boundary(state, force=True)
    assert path.exists() and ck.writes == 1
    assert [p.name for p in path.parent.iterdir()] == ["run.npz"]   # no temporary left over
    with np.load(path, allow_pickle=False) as data:          # no pickled objects inside
        meta = json.loads(str(data["meta"][()]))
    assert meta["format"] == "rands-checkpoint/1" and meta["total"] == 35

    ck2 = Checkpointer(path, spec)
    ctx2 = _ctx(ckpt=ck2)
    for f in ("n", "sums", "sumsq", "next_rep"):
        assert np.array_equal(getattr(ctx2, f), getattr(ctx, f))
    assert ctx2.total == ctx.total and ctx2.trace == ctx.trace
    st = ctx2.restored
    assert np.array_equal(st["alive"], state["alive"]) and st["alive"].dtype == bool
    assert st["r"] == 7 and st["h2"] == 3.25 and st["done"] is False and st["label"] == "kn"
    assert st["none"] is None and st["i"] == 4 and np.array_equal(st["c"], state["c"])
    assert ck2.previous_wall_time > 0


def test_resume_refuses_another_run(tmp_path):
    path = tmp_path / "c.npz"
    ck = Checkpointer(path, {"procedure": "kn", "params": {"alpha": 0.05}, "seed": 1})
    ctx = _ctx(ckpt=ck)
    ctx.boundary({"r": 1}, force=True)
    with pytest.raises(ParameterError, match=r"differs in params\.alpha"):
        _ctx(ckpt=Checkpointer(path, {"procedure": "kn", "params": {"alpha": 0.1}, "seed": 1}))
    with pytest.raises(ParameterError, match="holds 5 systems, the run has 6"):
        _ctx(k=6, ckpt=Checkpointer(path, {"procedure": "kn", "params": {"alpha": 0.05}, "seed": 1}))
    path.write_bytes(b"garbage")
    with pytest.raises(ParameterError, match="cannot be read"):
        _ctx(ckpt=Checkpointer(path, {"procedure": "kn"}))


def test_bad_inputs():
    with pytest.raises(ParameterError, match="interval_s"):
        Checkpointer("x.npz", {}, interval_s=-1)
    with pytest.raises(ParameterError, match="run_spec must be a dict"):
        Checkpointer("x.npz", [1])


def test_stop_request_and_interval(tmp_path):
    path = tmp_path / "s.npz"
    ck = Checkpointer(path, {"a": 1}, interval_s=0.0)
    ctx = _ctx(ckpt=ck)
    ctx.boundary({"r": 1})                   # interval 0: every boundary writes
    assert ck.writes == 1
    with ck.handle_signals():
        os.kill(os.getpid(), signal.SIGTERM)   # handled: sets the stop flag, does not kill
        time.sleep(0.05)
        assert ck.stop_requested
        with pytest.raises(Interrupted) as info:
            ctx.boundary({"r": 2})
    assert info.value.checkpoint == str(path) and ck.writes == 2
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler) or \
        callable(signal.getsignal(signal.SIGTERM))


from stopping import StopAt  # noqa: E402  (a simulated SIGTERM between stages)


def _spec(name):
    return {"procedure": name, "case": CASES[name][1], "problem": CASES[name][0], "seed": 7}


# KN and KT one stage at a time, so that stop 3 falls inside a match (their default look-ahead
# puts a small case in one or two blocks; a stop at the first block boundary covers it)
@pytest.mark.parametrize("name", ["kn/lookahead=1", "kn/c=2", "kt/lookahead=1", "kt/crn", "fbkt", "ocba", "efg",
                                  "gsp", "pass"])
@pytest.mark.parametrize("stop_at", [1, 3])
def test_resume_gives_identical_result(tmp_path, name, stop_at):
    proc = procedure_of(name)
    prob, params = CASES[name]
    full = rands.select("slippage", proc, seed=7, problem_params=prob, **params)
    path = tmp_path / "run.npz"
    with pytest.raises(Interrupted):
        rands.select("slippage", proc, seed=7, problem_params=prob,
                     checkpoint=StopAt(path, _spec(name), interval_s=3600, stop_at=stop_at), **params)
    assert path.exists()
    again = rands.select("slippage", proc, seed=7, problem_params=prob,
                         checkpoint=Checkpointer(path, _spec(name), interval_s=3600), **params)
    assert again.best == full.best
    assert np.array_equal(again.sample_sizes, full.sample_sizes)
    assert np.array_equal(again.means, full.means, equal_nan=True)
    assert again.total_samples == full.total_samples


# KN with a small indifference zone: several seconds of stages after the first checkpoint, so
# SIGTERM reliably lands mid-run even on an idle machine
CONFIG = """
[problem]
name = "slippage"
k = 150
delta = 0.02

[procedure]
name = "kn"
alpha = 0.05
delta = 0.02
n0 = 10

[run]
seed = 3
{ckpt}
checkpoint_interval = 0.2
"""


def _cli(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "rands.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_cli_sigterm_then_resume_is_identical(tmp_path):
    if not Path(rands.__file__).with_name("cli.py").exists():
        pytest.skip("rands.cli not available yet")
    ckpt = tmp_path / "kn.npz"
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG.format(ckpt=f'checkpoint = "{ckpt}"'))
    ref_cfg = tmp_path / "ref.toml"
    ref_cfg.write_text(CONFIG.format(ckpt=""))
    ref = _cli(["run", str(ref_cfg), "--json"])
    out, err = ref.communicate(timeout=120)
    assert ref.returncode == 0, err
    full = json.loads(out)

    p = _cli(["run", str(cfg), "--json"])
    t0 = time.time()
    while not ckpt.exists() and time.time() - t0 < 60 and p.poll() is None:
        time.sleep(0.01)
    assert p.poll() is None, "the run finished before SIGTERM; make the test problem larger"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, (out, err)
    assert "interrupted" in err and ckpt.exists()

    r = _cli(["run", str(cfg), "--json", "--resume"])
    out, err = r.communicate(timeout=120)
    assert r.returncode == 0, err
    resumed = json.loads(out)
    for key in ("best", "sample_sizes", "means", "total_samples"):
        assert resumed[key] == full[key], key


def test_sigterms_during_a_checkpoint_write_wait_for_it(tmp_path, monkeypatch):
    """Under the CLI's stop guard, SIGTERMs that arrive while the checkpoint is being written
    (two here, from inside the write) only request a stop: the write completes, verifies, and
    the run then stops with Interrupted at that boundary."""
    from rands import checkpoint as ckmod
    ck = Checkpointer(tmp_path / "c.npz", {"run": 1}, interval_s=0.0)
    ctx = _ctx(ckpt=ck)
    ctx.draw(np.arange(5), 4)
    real = ckmod.np.savez

    def savez_under_signals(fh, **arrays):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        real(fh, **arrays)

    monkeypatch.setattr(ckmod.np, "savez", savez_under_signals)
    with ckmod.stop_guard(ck) as guard:
        with pytest.raises(Interrupted):
            ck.at_boundary(ctx, {"stage": 1})          # written (due), then the stop is honoured
            ck.at_boundary(ctx, {"stage": 2})
    assert guard.received == 2 and ck.stop_requested
    _, meta = ck.load_verified()
    assert meta["scalars"]["stage"] in (1, 2)


def test_stop_guard_without_a_checkpoint():
    """No checkpointer: the first SIGTERM raises Interrupted (nothing to write); later ones and
    any after the result exists (armed False) only count."""
    from rands.checkpoint import StopGuard
    guard = StopGuard(None)
    with pytest.raises(Interrupted, match="no checkpoint was set"):
        guard(signal.SIGTERM, None)
    guard(signal.SIGTERM, None)                         # the second: counted, no exception
    late = StopGuard(None)
    late.armed = False
    late(signal.SIGTERM, None)
    assert guard.received == 2 and late.received == 1
