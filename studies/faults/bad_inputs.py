"""Issue 15's count: bad inputs and faults tried as a user would, each classified.

Every case runs ``rands run CONFIG`` in-process (``rands.cli.main``) under a 30 s alarm, on the
serial backend (the processes and MPI paths of the same checks are in tests/test_faults.py).
A case is

* **refused clearly**: exit code 2, exactly one ``rands: error:`` line, no traceback, and the
  line holds every expected phrase (the key or file it is about, and what is valid);
* **unclear**: anything else that is not exit 0: a traceback, several lines, a generic
  "Type: message" line, a phrase missing, a hang (over the alarm);
* **silently accepted**: exit 0 (for the one input that is allowed by design, an ``output``
  outside the config's folder, exit 0 counts as clear when the run header names the path).

    nice -n 19 python studies/faults/bad_inputs.py     # writes bad_inputs.json and bad_inputs.md
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import rands
from rands import cli
from rands.checkpoint import Checkpointer, digest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))
from tomlio import render as render_tables  # noqa: E402
TIMEOUT_S = 30
SMALL = {"name": "slippage", "k": 5, "delta": 0.5}
KN = {"name": "kn", "delta": 0.5, "n0": 10}


#: the same script on the tree before the hang guard (commit 426633b~1, 2026-12-07)
HISTORY = ("Before the hang guard (the tree at 426633b~1, same script): 103 tried, 99 refused clearly, "
           "4 unclear, 0 silently accepted. Unclear: `sim_timeout` refused as not implemented (twice: "
           "1e-09 and the hang case), a raising simulation on serial reported as `RuntimeError: ...` "
           "without system and replication, and the first case that ran a selection went over the "
           "30 s alarm while numba compiled its kernels in the fresh checkout (not a fault of the input).")


class HangSlippage(rands.problems.normal.Slippage):
    """Slippage whose system 3 sleeps 10^6 s (raise: raises; nan: returns NaN) when $FAULT says."""

    name = "fault-slippage"

    def simulate(self, systems, reps, streams):
        out = super().simulate(systems, reps, streams)
        hit = np.asarray(systems) == 3
        mode = os.environ.get("FAULT", "hang")
        if hit.any() and mode == "hang":
            time.sleep(1e6)
        if hit.any() and mode == "raise":
            raise RuntimeError("injected fault")
        if hit.any() and mode == "nan":
            out[np.flatnonzero(hit)[0]] = np.nan
        return out


def render(problem: dict, procedure: dict, run: dict | None = None) -> str:
    """A config with [problem], [procedure] and [run] tables (the tests' TOML writer)."""
    return render_tables({"problem": problem, "procedure": procedure, "run": run or {}})


def cases(tmp: Path) -> list[dict]:
    """(what, config text or bytes, extra argv, expected phrases, setup) for every case."""
    blocker = tmp / "afile"
    out: list[dict] = []

    def add(what, text, needles, argv=(), setup=None, allowed=False):
        out.append({"what": what, "text": text, "needles": list(needles), "argv": list(argv),
                    "setup": setup, "allowed": allowed})

    # [run] table
    for key, value, needles in [
        ("seed", -1, ["seed", "-1"]), ("seed", 1.5, ["seed", "1.5"]), ("seed", True, ["seed", "True"]),
        ("seed", "abc", ["seed", "'abc'"]), ("seed", [-1], ["seed"]), ("seed", float("nan"), ["seed", "nan"]),
        ("backend", "gpu", ["backend", "'gpu'"]), ("backend", 5, ["backend", "5"]),
        ("workers", 0, ["workers", "0"]), ("workers", -1, ["workers"]), ("workers", 1.5, ["workers", "1.5"]),
        ("workers", "2", ["workers", "'2'"]), ("workers", True, ["workers", "True"]),
        ("workers", 4, ["workers=4", "serial"]),
        ("checkpoint", 5, ["checkpoint", "5"]), ("checkpoint", True, ["checkpoint", "True"]),
        ("checkpoint", [], ["checkpoint"]),
        ("checkpoint_interval", "x", ["checkpoint_interval", "'x'"]),
        ("checkpoint_interval", -1, ["checkpoint_interval", "-1"]),
        ("checkpoint_interval", float("nan"), ["checkpoint_interval", "nan"]),
        ("output", 5, ["output", "5"]), ("output", False, ["output", "False"]),
        ("progress", "yes", ["progress", "'yes'"]), ("progress", 2, ["progress", "2"]),
        ("sim_timeout", 0, ["sim_timeout", "0"]), ("sim_timeout", -1, ["sim_timeout", "-1"]),
        ("sim_timeout", "x", ["sim_timeout", "'x'"]), ("sim_timeout", float("nan"), ["sim_timeout", "nan"]),
        ("sim_timeout", 1e-9, ["sim_timeout", "1e-09"]),
        ("oversubscribe", "yes", ["oversubscribe", "'yes'"]),
        ("sed", 1, ["unknown key", "sed"]),
    ]:
        add(f"[run] {key} = {value!r}", render(SMALL, KN, {key: value}), needles)
    add("[run] workers = 10^9 (processes)", render(SMALL, KN, {"backend": "processes", "workers": 10**9}),
        ["workers=1,000,000,000", "oversubscribe"])
    add("[run] workers = 10^9, oversubscribe", render(SMALL, KN, {"backend": "processes", "workers": 10**9,
                                                                  "oversubscribe": True}),
        ["needs about", "this machine has"])
    add("[run] output under a regular file", render(SMALL, KN, {"output": str(blocker / "r.json")}),
        ["output", "regular file"])
    add("[run] checkpoint under a regular file", render(SMALL, KN, {"checkpoint": str(blocker / "c.npz")}),
        ["checkpoint", "regular file"])
    add("[run] output is a folder", render(SMALL, KN, {"output": str(tmp)}), ["output", "is a folder"])
    add("[run] output in an unwritable folder", render(SMALL, KN, {"output": "/proc/1/r.json"}),
        ["output", "cannot be written"])
    add("[run] output outside the config's folder", render(SMALL, KN, {"output": "../outside.json"}),
        ["outside the config's folder"], allowed=True)

    # [problem]
    for key, value, needles in [
        ("k", 0, ["k", "0"]), ("k", 1, ["k", "1"]), ("k", -5, ["k", "-5"]), ("k", 1.5, ["k", "1.5"]),
        ("k", "10", ["k", "'10'"]), ("k", True, ["k", "True"]), ("k", 10**12, ["needs about", "this machine has"]),
        ("delta", 0, ["delta", "0"]), ("delta", -1, ["delta", "-1"]), ("delta", float("nan"), ["delta", "nan"]),
        ("delta", float("inf"), ["delta", "inf"]), ("delta", "x", ["delta", "'x'"]),
        ("colour", 1, ["colour"]),
    ]:
        add(f"[problem] slippage {key} = {value!r}", render({**SMALL, key: value}, KN), needles)
    for value, needles in [("abc", ["means", "'abc'"]), ([], ["means"]), (["a"], ["means"]),
                           ([float("nan"), 1.0], ["means", "nan"]), ([float("inf"), 1.0], ["means", "inf"])]:
        add(f"[problem] normal means = {value!r}", render({"name": "normal", "means": value}, KN), needles)
    add("[problem] unknown name", render({"name": "nope"}, KN), ["unknown problem", "'nope'"])
    add("[problem] name = 5", render({"name": 5}, KN), ["name must be a string"])
    add("[problem] import path as name", render({"name": "os:system"}, KN), ["unknown problem", "'os:system'"])

    # [procedure]
    for key, value, needles in [
        ("alpha", 0, ["alpha", "0"]), ("alpha", 1, ["alpha", "1"]), ("alpha", -0.1, ["alpha", "-0.1"]),
        ("alpha", 1e-300, ["alpha", "1e-300"]), ("alpha", float("nan"), ["alpha", "nan"]),
        ("alpha", "x", ["alpha", "'x'"]), ("alpha", True, ["alpha", "True"]),
        ("delta", float("inf"), ["delta", "inf"]), ("delta", 0, ["delta", "0"]),
        ("delta", 1e-300, ["delta", "1e-300"]),
        ("n0", 1, ["n0", "1"]), ("n0", 0, ["n0", "0"]), ("n0", 1.5, ["n0", "1.5"]), ("n0", True, ["n0", "True"]),
        ("n0", 10**9, ["needs about", "n0=1,000,000,000"]),
        ("crn", "yes", ["crn", "'yes'"]), ("lookahead", -1, ["lookahead", "-1"]), ("speed", 3, ["speed"]),
    ]:
        add(f"[procedure] kn {key} = {value!r}", render(SMALL, {**KN, key: value}), needles)
    for proc, needles in [
        ({"name": "equal", "budget": 3}, ["budget"]),
        ({"name": "efg", "budget": 100, "n0": 5, "batch": 2**62}, ["batch", "exceeds the greedy budget"]),
        ({"name": "gsp", "rbar": 10**12}, ["rbar"]),
        ({"name": "dc", "alpha_split": 1e-30}, ["alpha_split"]),
        ({"name": "rinott", "crn": True}, ["rinott", "crn"]),
        ({"name": "ocba", "budget": -5}, ["budget", "-5"]),
        ({"name": "nope"}, ["unknown procedure", "'nope'"]),
        ({"name": "rands.procedures:KN"}, ["unknown procedure"]),
    ]:
        add(f"[procedure] {proc}", render(SMALL, proc), needles)

    # the file itself
    add("binary garbage as a config", bytes(range(256)) * 4, ["is not UTF-8 text"])
    add("invalid TOML", "[problem]\nname = 'slippage'\nk = [1,\n", ["is not valid TOML"])
    add("no [problem] table", render(SMALL, KN).replace("[problem]", "[problme]"), ["[problem]"])
    add("run = 5 instead of a table", "run = 5\n" + render(SMALL, KN).replace("[run]\n", ""), ["[run]"])
    add("an unknown table", render(SMALL, KN) + "[extra]\na = 1\n", ["unknown table", "extra"])
    add("a config that does not exist", None, ["does not exist"])

    # checkpoints (resumed with --resume)
    spec = {"problem": rands.problems.make("slippage", k=60, delta=0.5).spec(), "procedure": "kn",
            "params": rands.procedures.make("kn", delta=0.5).get_params(), "seed": 3}
    ck = tmp / "ck.npz"
    ck_text = render({"name": "slippage", "k": 60, "delta": 0.5}, {"name": "kn", "delta": 0.5},
                     {"seed": 3, "checkpoint": str(ck)})

    def damage(edit, rehash=False):
        def setup():
            _interrupted(ck, spec)
            with np.load(ck, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            edit(arrays)
            if rehash:
                arrays["sha256"] = np.array(digest(arrays))
            np.savez(ck, **arrays)
        return setup

    def sums50(a):
        a["ctx__sums"] = a["ctx__sums"].copy()
        a["ctx__sums"][50] = 1e9
    for what, edit, rehash in [
        ("sums of system 50 set to 1e9", sums50, False),
        ("meta not JSON", lambda a: a.update(meta=np.array("{not json")), True),
        ("ctx__sumsq missing", lambda a: a.pop("ctx__sumsq"), True),
        ("ctx__n as float32", lambda a: a.update(ctx__n=a["ctx__n"].astype(np.float32)), True),
        ("sha256 missing", lambda a: a.pop("sha256"), False),
        ("a pickled object array", lambda a: a.update(state__x=np.array([{"a": 1}], dtype=object)), True),
    ]:
        add(f"checkpoint: {what}", ck_text, ["is damaged", "delete it to start over"], argv=["--resume"],
            setup=damage(edit, rehash))
    add("checkpoint: truncated file", ck_text, ["is damaged"], argv=["--resume"],
        setup=lambda: (_interrupted(ck, spec), ck.write_bytes(ck.read_bytes()[:200])))
    add("checkpoint: written by another run", ck_text.replace("seed = 3", "seed = 4"),
        ["written for another run", "seed"], argv=["--resume"], setup=lambda: _interrupted(ck, spec))

    # two runs on the same paths
    locked = tmp / "locked.json"
    add("output in use by another run", render(SMALL, KN, {"output": str(locked)}),
        ["in use by another rands run", "pid"], setup=lambda: _hold_lock(locked))

    # faults in the simulation (sim_timeout guards the hang)
    for mode, run, needles in [("hang", {"sim_timeout": 1.0}, ["sim_timeout", "system 3"]),
                               ("raise", {}, ["injected fault", "system 3"]),
                               ("nan", {}, ["non-finite", "system 3"])]:
        add(f"simulation fault: {mode}", render({"name": "fault-slippage", "k": 6, "delta": 0.5}, KN, run),
            needles, setup=lambda mode=mode: os.environ.__setitem__("FAULT", mode))
    return out


def _interrupted(path: Path, spec: dict) -> None:
    """A checkpoint of a run stopped at its first boundary."""
    path.unlink(missing_ok=True)
    class StopFirst(Checkpointer):
        def at_boundary(self, ctx, state, force=False):
            self.request_stop()
            super().at_boundary(ctx, state, force)
    with contextlib.suppress(rands.errors.Interrupted):
        rands.select("slippage", "kn", seed=3, problem_params={"k": 60, "delta": 0.5}, delta=0.5,
                     checkpoint=StopFirst(path, spec))


_HOLDERS: list[subprocess.Popen] = []


def _hold_lock(path: Path) -> None:
    code = ("import sys, time\nfrom rands.preflight import RunLock\n"
            "RunLock({'output': sys.argv[1]}).acquire()\nprint('locked', flush=True)\ntime.sleep(600)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    p.stdout.readline()
    _HOLDERS.append(p)


class _Timeout(BaseException):
    pass


def run_case(case: dict, tmp: Path, i: int) -> dict:
    folder = tmp / f"case{i}" / "sub"
    folder.mkdir(parents=True)
    (tmp / "afile").write_text("x")
    cfg = folder / "c.toml"
    if case["text"] is not None:
        cfg.write_bytes(case["text"] if isinstance(case["text"], bytes) else case["text"].encode())
    if case["setup"]:
        case["setup"]()
    err, out = io.StringIO(), io.StringIO()

    def alarm(signum, frame):  # noqa: ARG001
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    cwd = os.getcwd()
    os.chdir(folder)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = cli.main(["run", str(cfg), *case["argv"]])
    except _Timeout:
        rc = "timeout"
    except SystemExit as exc:
        rc = exc.code
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(cwd)
    secs = time.perf_counter() - t0
    text = err.getvalue()
    errors = [ln for ln in text.splitlines() if ln.startswith("rands: error:")]
    if rc == 0:
        header = [ln for ln in text.splitlines() if ln.startswith("rands: ")]
        clear = case["allowed"] and any(all(n in ln for n in case["needles"]) for ln in header)
        verdict = "refused_clearly" if clear else "silently_accepted"
    elif (rc == 2 and len(errors) == 1 and "Traceback" not in text
          and all(n in errors[0] for n in case["needles"])):
        verdict = "refused_clearly"
    else:
        verdict = "unclear"
    return {"what": case["what"], "verdict": verdict, "exit": rc, "seconds": round(secs, 2),
            "message": errors[0] if errors else text.strip()[-300:]}


def main() -> int:
    sys.path.insert(0, str(HERE))
    rands.problems.register("fault-slippage", "bad_inputs:HangSlippage")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        all_cases = cases(tmp)
        try:
            for i, case in enumerate(all_cases):
                rows.append(run_case(case, tmp, i))
                print(f"{rows[-1]['verdict']:18s} {case['what']}", flush=True)
        finally:
            for p in _HOLDERS:
                p.kill()
                p.wait()
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("refused_clearly", "unclear", "silently_accepted")}
    record = {"command": "nice -n 19 python studies/faults/bad_inputs.py", "tried": len(rows), **counts,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cases": rows}
    (HERE / "bad_inputs.json").write_text(json.dumps(record, indent=1))
    lines = ["# Bad inputs and faults, tried as a user would (issue 15)", "",
             f"`{record['command']}` ({record['date']}), serial backend, in-process `rands run`, "
             f"{TIMEOUT_S} s alarm per case.", "",
             f"**{len(rows)} tried: {counts['refused_clearly']} refused clearly, {counts['unclear']} unclear, "
             f"{counts['silently_accepted']} silently accepted.**", "",
             "| input | verdict | exit | s | message |", "|---|---|---|---|---|"]
    for r in rows:
        msg = str(r["message"]).replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(f"| {r['what'].replace('|', '/')} | {r['verdict']} | {r['exit']} | {r['seconds']} | {msg} |")
    lines += ["", HISTORY]
    (HERE / "bad_inputs.md").write_text("\n".join(lines) + "\n")
    print(f"{len(rows)} tried: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
