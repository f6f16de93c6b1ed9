"""Survey: well-typed but extreme values for every numeric key of the fuzz bases.

For each base config of tests/test_config_fuzz.py and each integer key: 2**62 and 10**7; each
real key: 1e-300, 1e-30 and 1e300. Each case runs in-process through ``rands.cli.main`` under
a 10 s alarm and is classified: ran (exit 0), refused clearly (exit 2 with a message naming the
key or a memory estimate), refused unclearly (exit 2 with a generic "Type: ..." line), or over
the alarm (a valid but long run; the alarm interrupting a numba kernel shows as a SystemError
line, counted here as over the alarm). Results: extreme_values.json, summary printed.

    nice -n 19 python studies/faults/extreme_values.py
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))
import test_config_fuzz as F  # noqa: E402

from rands import cli  # noqa: E402
from rands.params import Interval  # noqa: E402


class _Alarm(BaseException):
    pass


def _raise(*_):
    raise _Alarm()


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    os.chdir(tmp)
    signal.signal(signal.SIGALRM, _raise)
    rows = []
    for prob, proc in F.BASES:
        cfg = tmp / "c.toml"
        cfg.write_text(F._render({"problem": prob, "procedure": proc, "run": F.RUN_BASE}))
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            cli.main(["run", str(cfg)])                 # warm up the compiled kernels
        for section, table in (("problem", prob), ("procedure", proc)):
            for key, cons in F._owner_table(section, table["name"]).items():
                kinds = {c.kind for c in cons if isinstance(c, Interval)}
                values = ([2**62, 10**7] if int in kinds else []) + ([1e-300, 1e-30, 1e300] if float in kinds else [])
                for v in values:
                    t = {"problem": dict(prob), "procedure": dict(proc), "run": F.RUN_BASE}
                    t[section][key] = v
                    cfg.write_text(F._render(t))
                    err = io.StringIO()
                    signal.setitimer(signal.ITIMER_REAL, 10)
                    try:
                        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                            rc = cli.main(["run", str(cfg)])
                    except _Alarm:
                        rc = "alarm"
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    line = next((ln for ln in err.getvalue().splitlines() if ln.startswith("rands: error")), "")
                    if rc == "alarm" or "SystemError: CPUDispatcher" in line:
                        cls = "over_alarm"
                    elif rc == 0:
                        cls = "ran"
                    elif rc == 2 and (key in line or "memory" in line):
                        cls = "refused_clear"
                    else:
                        cls = "refused_unclear"
                    rows.append({"problem": prob["name"], "procedure": proc["name"], "section": section,
                                 "key": key, "value": v if abs(v) < 1e18 else repr(v), "rc": rc,
                                 "class": cls, "message": line[:200]})
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["class"]] = counts.get(r["class"], 0) + 1
    out = {"command": "nice -n 19 python studies/faults/extreme_values.py", "cases": len(rows),
           "counts": counts, "rows": rows}
    (HERE / "extreme_values.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(counts))
    for r in rows:
        if r["class"] in ("refused_unclear", "over_alarm"):
            print(r["class"], r["problem"], r["procedure"], r["key"], r["value"], r["message"][:120])


if __name__ == "__main__":
    main()
