"""The ``rands`` command line.

    rands run CONFIG.toml [--json] [--resume] [--checkpoint PATH] [--output PATH]
    rands select --problem NAME [-P key=value ...] --procedure NAME [-p key=value ...] --seed S
    rands procedures [--json]
    rands validate --problem NAME ... --procedure NAME ... --macroreps M --seed S
    rands report RESULT.json [...] [-o report.html]
    rands demo [--output DIR] [--seed S] [--quick]

CONFIG.toml has ``[problem]`` (name + params), ``[procedure]`` (name + params)
and ``[run]`` (seed; backend = "serial" | "processes" | "mpi"; workers;
checkpoint; checkpoint_interval; output; progress). Under ``mpiexec`` only rank
0 prints or writes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from .errors import Interrupted, ParameterError, SimulationError

_RUN_KEYS = {"seed", "backend", "workers", "checkpoint", "checkpoint_interval", "output", "progress"}


def parse_value(text: str) -> Any:
    """A command-line value as TOML (numbers, booleans, arrays, quoted strings), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in pairs or []:
        if "=" not in item:
            raise ParameterError(f"{what} must look like key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    return out


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a run configuration (TOML)."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"config file {str(p)!r} does not exist")
    with p.open("rb") as fh:
        try:
            cfg = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ParameterError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    for section in ("problem", "procedure"):
        if section not in cfg or "name" not in cfg[section]:
            raise ParameterError(f"config {str(p)!r} needs a [{section}] table with a name")
    run = cfg.setdefault("run", {})
    unknown = set(run) - _RUN_KEYS
    if unknown:
        raise ParameterError(f"unknown key(s) {sorted(unknown)} in [run]; valid: {sorted(_RUN_KEYS)}")
    extra = set(cfg) - {"problem", "procedure", "run"}
    if extra:
        raise ParameterError(f"unknown table(s) {sorted(extra)} in config; valid: problem, procedure, run")
    return cfg


def _make_executor(backend: str, workers: int | None):
    if backend in (None, "serial"):
        return None, True
    if backend not in ("processes", "mpi"):
        raise ParameterError(f"[run] backend must be 'serial', 'processes' or 'mpi', got {backend!r}")
    from rands.parallel import make_executor  # lazy: mpi4py only when asked for
    ex = make_executor(backend, workers)
    if ex is None:          # an MPI worker rank whose service has ended
        return None, False
    return ex, True


def run_config(cfg: dict[str, Any], *, resume: bool = False, checkpoint: str | None = None,
               progress: bool = False):
    """Run a configuration; returns the SelectionResult (None on MPI worker ranks)."""
    from .selection import resolve_problem, resolve_procedure, select

    prob_cfg = dict(cfg["problem"])
    proc_cfg = dict(cfg["procedure"])
    run = cfg.get("run", {})
    if run.get("backend", "serial") in (None, "serial") and _serial_under_mpi():
        return None                       # a rank other than 0: rank 0 runs the serial selection
    problem = resolve_problem(prob_cfg.pop("name"), prob_cfg)
    procedure = resolve_procedure(proc_cfg.pop("name"), proc_cfg)
    seed = run.get("seed", 0)
    executor, is_root = _make_executor(run.get("backend", "serial"), run.get("workers"))
    if not is_root:
        return None
    ckpt_path = checkpoint or run.get("checkpoint")
    if resume and not ckpt_path:
        raise ParameterError("--resume needs a checkpoint path ([run] checkpoint or --checkpoint)")
    ckpt = None
    if ckpt_path:
        from .checkpoint import Checkpointer
        spec = {"problem": problem.spec(), "procedure": procedure.name,
                "params": procedure.get_params(), "seed": seed}
        if not resume and Path(ckpt_path).exists():
            Path(ckpt_path).unlink()
        ckpt = Checkpointer(ckpt_path, spec, interval_s=float(run.get("checkpoint_interval", 120.0)))
    try:
        if ckpt is not None:
            with ckpt.handle_signals():
                return select(problem, procedure, seed=seed, executor=executor, checkpoint=ckpt,
                              progress=progress or bool(run.get("progress", False)))
        return select(problem, procedure, seed=seed, executor=executor,
                      progress=progress or bool(run.get("progress", False)))
    finally:
        if executor is not None:
            executor.close()


def _serial_under_mpi() -> bool:
    """True on ranks > 0 when an MPI launcher started several ranks for a serial run (rank 0
    says so once and runs it alone, rather than every rank running and printing it)."""
    from .progress import launcher_rank, launcher_size
    size = launcher_size()
    if size <= 1:
        return False
    if launcher_rank() == 0:
        print(f"rands: backend 'serial' under {size} MPI ranks: running on rank 0 only "
              "(backend = \"mpi\" uses every rank)", file=sys.stderr)
        return False
    return True


def _emit(result, args, output: str | None) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(result.to_json(indent=1))
    if getattr(args, "json", False):
        print(result.to_json())
    else:
        print(result.summary())


def cmd_run(args) -> int:
    cfg = load_config(args.config)
    result = run_config(cfg, resume=args.resume, checkpoint=args.checkpoint,
                        progress=_progress_default(args, cfg))
    if result is None:
        return 0
    _emit(result, args, args.output or cfg["run"].get("output"))
    return 0


def _progress_default(args, cfg) -> bool:
    """The bar of ``rands run``: on when stderr is a terminal, off with --quiet, off on MPI ranks
    other than 0, off when [run] progress = false."""
    from .progress import launcher_rank
    if getattr(args, "quiet", False):
        cfg["run"]["progress"] = False
        return False
    return (sys.stderr.isatty() and launcher_rank() == 0
            and cfg["run"].get("progress", True) is not False)


def cmd_select(args) -> int:
    cfg = {"problem": {"name": args.problem, **parse_pairs(args.problem_param, "--problem-param")},
           "procedure": {"name": args.procedure, **parse_pairs(args.param, "--param")},
           "run": {"seed": args.seed, "backend": args.backend, "workers": args.workers}}
    result = run_config(cfg)
    if result is None:
        return 0
    _emit(result, args, args.output)
    return 0


def cmd_procedures(args) -> int:
    from . import procedures
    from .selection import N0_MUST_GROW, N0_SHARE
    rows = [procedures.procedure_class(n).describe() for n in procedures.names()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        inputs = ", ".join(f"{k}={v!r}" for k, v in r["inputs"].items())
        print(f"{r['name']:7s} [{r['kind']}] guarantee: {r['guarantee']}\n"
              f"        assumptions: {r['assumptions']}\n"
              f"        CRN {'allowed' if r['crn'] else 'refused'}; inputs: {inputs}\n"
              f"        reference: {r['reference']}")
        if r["name"] in N0_MUST_GROW:
            print(f"        n0 must grow with the budget for consistency: {N0_MUST_GROW[r['name']]}; "
                  f"rands warns when n0*k < {N0_SHARE:.0%} of the budget")
    return 0


def cmd_validate(args) -> int:
    from .validation import validate
    v = validate(args.problem, args.procedure, macroreps=args.macroreps, seed=args.seed,
                 problem_params=parse_pairs(args.problem_param, "--problem-param"),
                 **parse_pairs(args.param, "--param"))
    print(json.dumps(v.to_dict()) if args.json else v.row())
    return 0


def cmd_report(args) -> int:
    from .report import write_report
    out = write_report(args.results, args.output, title=args.title, top=args.top)
    print(f"rands: wrote {out} ({out.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(output=args.output, seed=args.seed, quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rands", description="Ranking and selection for simulation optimization")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a TOML configuration")
    r.add_argument("config")
    r.add_argument("--json", action="store_true", help="print the result record as one JSON object")
    r.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    r.add_argument("--checkpoint", help="checkpoint path (overrides [run] checkpoint)")
    r.add_argument("--output", help="write the result JSON here")
    r.add_argument("--quiet", action="store_true",
                   help="no progress bar (it is on by default when stderr is a terminal)")
    r.set_defaults(func=cmd_run)

    def problem_procedure(p):
        p.add_argument("--problem", required=True)
        p.add_argument("-P", "--problem-param", action="append", metavar="KEY=VALUE")
        p.add_argument("--procedure", required=True)
        p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--json", action="store_true")

    s = sub.add_parser("select", help="select with problem and procedure given on the command line")
    problem_procedure(s)
    s.add_argument("--backend", default="serial", choices=["serial", "processes", "mpi"])
    s.add_argument("--workers", type=int)
    s.add_argument("--output")
    s.set_defaults(func=cmd_select)

    p = sub.add_parser("procedures", help="list procedures with their guarantees and inputs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_procedures)

    v = sub.add_parser("validate", help="estimate PCS/PGS by macroreplication")
    problem_procedure(v)
    v.add_argument("--macroreps", type=int, default=100)
    v.set_defaults(func=cmd_validate)

    rp = sub.add_parser("report", help="one self-contained HTML page (plots embedded) for result JSON files")
    rp.add_argument("results", nargs="+", metavar="RESULT.json",
                    help="selection or validation result(s); several are also compared side by side")
    rp.add_argument("-o", "--output", default="report.html", help="the HTML file to write")
    rp.add_argument("--title", help="page title")
    rp.add_argument("--top", type=int, default=20, help="leading systems listed and plotted")
    rp.set_defaults(func=cmd_report)

    d = sub.add_parser("demo", help="select the best of the 3,249 flow-line alternatives")
    d.add_argument("--output", default="rands_demo_output")
    d.add_argument("--seed", type=int, default=2024)
    d.add_argument("--quick", action="store_true", help="a smaller flow line (L=10) for a fast check")
    d.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ParameterError, SimulationError) as exc:
        print(f"rands: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"rands: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
