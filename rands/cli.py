"""The ``rands`` command line.

    rands run CONFIG.toml [--json] [--resume] [--checkpoint PATH] [--output PATH]
    rands run A.toml B.toml ... [--shard I/N] [--output DIR/{name}.json]   (a sweep)
    rands select --problem NAME [-P key=value ...] --procedure NAME [-p key=value ...] --seed S
    rands procedures [--json]
    rands validate --problem NAME ... --procedure NAME ... --macroreps M --seed S [--shard I/N --output F]
    rands merge SHARD.json ... [--json] [--output PATH]
    rands report RESULT.json [...] [-o report.html]
    rands demo [--output DIR] [--seed S] [--quick]

CONFIG.toml has ``[problem]`` (name + params), ``[procedure]`` (name + params)
and ``[run]`` (seed; backend = "serial" | "processes" | "mpi"; workers;
oversubscribe; checkpoint; checkpoint_interval; output; progress; sim_timeout).
Under ``mpiexec`` only rank 0 prints or writes. Everything is checked before the
first sample (rands.params tables, rands.preflight: memory, workers, paths, locks);
every error is one line on stderr with exit code 2 (``--debug``: the traceback).
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

_RUN_KEYS = {"seed", "backend", "workers", "checkpoint", "checkpoint_interval", "output", "progress",
             "sim_timeout", "oversubscribe"}


def _run_constraints() -> dict:
    """The [run] table's parameter constraints (rands.params)."""
    from .params import SIM_TIMEOUT, Boolean, Interval, NoneValue, Options, Seed, String, ints
    return {"seed": [Seed()], "backend": [Options(("serial", "processes", "mpi"))],
            "workers": [*ints(1), NoneValue()], "checkpoint": [String("a file path")],
            "checkpoint_interval": [Interval(float, 0.0, None)], "output": [String("a file path")],
            "progress": [Boolean()], "sim_timeout": [*SIM_TIMEOUT, NoneValue()],
            "oversubscribe": [Boolean()]}


def check_run_table(run: Any) -> dict[str, Any]:
    """Validate a [run] table against its constraints; returns it."""
    from .params import validate_params
    if not isinstance(run, dict):
        raise ParameterError(f"[run] must be a table, got {type(run).__name__}")
    validate_params(_run_constraints(), run, "[run]")
    return run


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
    try:
        with p.open("rb") as fh:
            cfg = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ParameterError(f"config file {str(p)!r} is not UTF-8 text (byte {exc.start}); a config "
                             "is a TOML file") from None
    except OSError as exc:
        raise ParameterError(f"config file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    for section in ("problem", "procedure"):
        if section not in cfg or not isinstance(cfg[section], dict) or "name" not in cfg[section]:
            raise ParameterError(f"config {str(p)!r} needs a [{section}] table with a name")
        if not isinstance(cfg[section]["name"], str):
            raise ParameterError(f"config {str(p)!r}: [{section}] name must be a string, got "
                                 f"{cfg[section]['name']!r}")
    run = cfg.setdefault("run", {})
    if not isinstance(run, dict):
        raise ParameterError(f"config {str(p)!r}: run must be a [run] table, got {run!r}")
    unknown = set(run) - _RUN_KEYS
    if unknown:
        raise ParameterError(f"unknown key(s) {sorted(unknown)} in [run]; valid: {sorted(_RUN_KEYS)}")
    extra = set(cfg) - {"problem", "procedure", "run"}
    if extra:
        raise ParameterError(f"unknown table(s) {sorted(extra)} in config; valid: problem, procedure, run")
    check_run_table(run)
    cfg["__config__"] = str(p)          # where it came from (the run header names paths outside it)
    return cfg


def _make_executor(backend: str, workers: int | None, **options):
    if backend in (None, "serial"):
        return None, True
    if backend not in ("processes", "mpi"):
        raise ParameterError(f"[run] backend must be 'serial', 'processes' or 'mpi', got {backend!r}")
    from rands.parallel import make_executor  # lazy: mpi4py only when asked for
    ex = make_executor(backend, workers, **options)
    if ex is None:          # an MPI worker rank whose service has ended
        return None, False
    return ex, True


def _takes_oversubscribe() -> bool:
    """Whether the processes executor accepts ``oversubscribe`` (the CLI checks it either way)."""
    import inspect
    from rands.parallel.processes import ProcessExecutor
    return "oversubscribe" in inspect.signature(ProcessExecutor.__init__).parameters


def _write_json(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in its folder, then a rename)."""
    import tempfile
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)        # mkstemp makes 0600; a result is an ordinary file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_config(cfg: dict[str, Any], *, resume: bool = False, checkpoint: str | None = None,
               progress: bool = False, output: str | None = None):
    """Run a configuration; returns the SelectionResult (None on MPI worker ranks).

    Before the first sample: the [run] table, the problem's and procedure's
    parameters, workers against the backend and CPUs, the memory the run needs,
    and every path it writes (``output``, the checkpoint: writable, not under a
    regular file, not in use by another run, which is refused with its pid).
    ``output`` (or [run] output) receives the result JSON, written under the lock.
    """
    from . import preflight
    from .selection import resolve_problem, resolve_procedure, select

    run = check_run_table(cfg.get("run", {}))
    prob_cfg = dict(cfg["problem"])
    proc_cfg = dict(cfg["procedure"])
    backend = run.get("backend", "serial")
    workers = run.get("workers")
    if backend in (None, "serial") and _serial_under_mpi():
        return None                       # a rank other than 0: rank 0 runs the serial selection
    preflight.check_workers(backend, workers, bool(run.get("oversubscribe", False)))
    problem = resolve_problem(prob_cfg.pop("name"), prob_cfg)
    procedure = resolve_procedure(proc_cfg.pop("name"), proc_cfg)
    procedure.check_problem(problem)
    n_proc = (workers or os.cpu_count() or 1) if backend == "processes" else 0
    preflight.check_memory(problem.k, preflight.first_stage_samples(procedure),
                           procedure.budget_limit(problem), n_proc,
                           what=f"{procedure.name} on {problem.name} (k={problem.k:,})")
    seed = run.get("seed", 0)
    output = output or run.get("output")
    ckpt_path = checkpoint or run.get("checkpoint")
    if resume and not ckpt_path:
        raise ParameterError("--resume needs a checkpoint path ([run] checkpoint or --checkpoint)")
    if output:
        preflight.check_writable(output, "output")
    if ckpt_path:
        preflight.check_writable(ckpt_path, "checkpoint")
    ckpt = resumed = None
    if ckpt_path:
        from .checkpoint import Checkpointer
        spec = {"problem": problem.spec(), "procedure": procedure.name,
                "params": procedure.get_params(), "seed": seed}
        ckpt = Checkpointer(ckpt_path, spec, interval_s=float(run.get("checkpoint_interval", 120.0)))
        if resume:
            resumed = ckpt.verify()   # a damaged or foreign checkpoint is refused before anything starts
    lock = preflight.RunLock({"checkpoint": ckpt_path, "output": output})
    from .checkpoint import stop_guard
    # SIGTERM: from here until the workers are gone and the locks released, a first signal stops
    # the run at a boundary (checkpoint) and later ones wait for the shutdown (no leaks, no orphans)
    with stop_guard(ckpt) as guard:
        if backend != "mpi":          # under MPI only rank 0 locks (below), once the ranks are sorted
            lock.acquire()
        try:
            options, extra = {}, {}
            if run.get("sim_timeout") is not None:
                extra["sim_timeout"] = float(run["sim_timeout"])
                if backend != "serial":
                    options["sim_timeout"] = float(run["sim_timeout"])
            if run.get("oversubscribe") and backend == "processes" and _takes_oversubscribe():
                options["oversubscribe"] = True     # checked above; the executor checks it too
            executor, is_root = _make_executor(backend, workers, **options)
            if not is_root:
                return None
            if backend == "mpi":
                lock.acquire()
            try:
                _print_header(cfg, problem, procedure, backend, output, ckpt_path, resumed)
                if ckpt is not None and not resume and ckpt.exists():
                    ckpt.remove()         # a fresh run (under the lock: never another run's checkpoint)
                show = progress or bool(run.get("progress", False))
                result = select(problem, procedure, seed=seed, executor=executor, checkpoint=ckpt,
                                progress=show, **extra)
                guard.armed = False       # the result exists: a SIGTERM now only waits for the end
                if output:
                    _write_json(output, result.to_json(indent=1))
                return result
            finally:
                if executor is not None:
                    executor.close()
        finally:
            lock.release()


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


def _print_header(cfg, problem, procedure, backend, output, ckpt_path, resumed=None) -> None:
    """One stderr line for a config run: what runs where, a write outside the config's folder,
    and, on a resume, how many samples the checkpoint (metadata ``resumed``) already holds."""
    source = cfg.get("__config__")
    if source is None:
        return
    folder = Path(source).absolute().parent
    parts = [f"rands: {procedure.name} on {problem.name} (k={problem.k:,}), backend {backend}"]
    for what, path in (("output", output), ("checkpoint", ckpt_path)):
        if path:
            where = os.path.abspath(path)
            from .preflight import outside
            note = f" (outside the config's folder {str(folder)!r})" if outside(path, folder) else ""
            parts.append(f"{what} {where!r}{note}")
    if resumed is not None:
        parts.append(f"resuming from {int(resumed['total'])} samples")
    print("; ".join(parts), file=sys.stderr)


def _emit(result, args, output: str | None) -> None:
    if output:
        _write_json(output, result.to_json(indent=1))
    if getattr(args, "json", False):
        print(result.to_json())
    else:
        print(result.summary())


def _sweep_path(template: str | None, index: int, config: str, what: str) -> str | None:
    """``template`` with {name} (the config's file stem) and {index} (its place in the list)."""
    if template is None:
        return None
    if "{name}" not in template and "{index}" not in template:
        raise ParameterError(f"{what} {template!r} is shared by every config of the sweep; "
                             "put {name} or {index} in it (e.g. results/{name}.json)")
    try:
        return template.format(name=Path(config).stem, index=index)
    except (KeyError, IndexError, ValueError) as exc:
        raise ParameterError(f"{what} {template!r}: only {{name}} and {{index}} may be used ({exc})") from None


def cmd_run(args) -> int:
    configs = list(args.config)
    if len(configs) == 1 and args.shard is None:
        cfg = load_config(configs[0])
        result = run_config(cfg, resume=args.resume, checkpoint=args.checkpoint,
                            progress=_progress_default(args, cfg),
                            output=args.output or cfg["run"].get("output"))
        if result is None:
            return 0
        _emit(result, args, None)          # run_config wrote the output under its lock
        return 0
    # a sweep: configs I, I+N, ... of shard I/N (an array task), or all of them, in order
    from .validation import shard_indices
    shard = _shard(args.shard, "run", auto=len(configs) > 1)
    chosen = range(len(configs)) if shard is None else shard_indices(len(configs), shard)
    plan = []
    for i in chosen:          # every chosen config checked before the first sample
        cfg = load_config(configs[i])
        out = ck = None
        if len(configs) > 1:
            out = _sweep_path(args.output, i, configs[i], "--output")
            ck = _sweep_path(args.checkpoint, i, configs[i], "--checkpoint")
        else:
            out, ck = args.output, args.checkpoint
        plan.append((i, cfg, out, ck))
    if len(plan) > 1 and any(cfg["run"].get("backend") == "mpi" for _, cfg, _, _ in plan):
        raise ParameterError(f"{len(plan)} configs in one MPI job: with backend = \"mpi\" run one config "
                             f"per job or array task (sbatch --array=0-{len(configs) - 1})")
    if not plan:
        print(f"rands: run shard {shard[0]}/{shard[1]} has none of the {len(configs)} configs",
              file=sys.stderr)
    for i, cfg, out, ck in plan:
        result = run_config(cfg, resume=args.resume, checkpoint=ck,
                            progress=_progress_default(args, cfg),
                            output=out or cfg["run"].get("output"))
        if result is None:
            continue
        _emit(result, args, None)          # run_config wrote the output under its lock
    return 0


def _progress_default(args, cfg) -> bool:
    """The bar of ``rands run``: on when stderr is a terminal or with --progress, off with --quiet,
    off on MPI ranks other than 0, off when [run] progress = false."""
    from .progress import launcher_rank
    if getattr(args, "quiet", False):
        cfg["run"]["progress"] = False
        return False
    if getattr(args, "progress", False):
        return launcher_rank() == 0
    return (sys.stderr.isatty() and launcher_rank() == 0
            and cfg["run"].get("progress", True) is not False)


def cmd_select(args) -> int:
    cfg = {"problem": {"name": args.problem, **parse_pairs(args.problem_param, "--problem-param")},
           "procedure": {"name": args.procedure, **parse_pairs(args.param, "--param")},
           "run": {"seed": args.seed, "backend": args.backend, "workers": args.workers}}
    result = run_config(cfg, output=args.output)
    if result is None:
        return 0
    _emit(result, args, None)              # run_config wrote the output under its lock
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
        if r.get("notes"):
            print(f"        {r['notes']}")
        if r["name"] in N0_MUST_GROW:
            print(f"        n0 must grow with the budget for consistency: {N0_MUST_GROW[r['name']]}; "
                  f"rands warns when n0*k < {N0_SHARE:.0%} of the budget")
    return 0


def slurm_array_shard(environ=None) -> tuple[int, int] | None:
    """(I, N) of this Slurm array task (task ids MIN, MIN+STEP, ... -> 0..N-1), else None."""
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    try:
        tid, count = int(env["SLURM_ARRAY_TASK_ID"]), int(env["SLURM_ARRAY_TASK_COUNT"])
        lo = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        hi = int(env.get("SLURM_ARRAY_TASK_MAX", lo + count - 1))
        step = int(env.get("SLURM_ARRAY_TASK_STEP", 1)) or 1
    except ValueError:
        raise ParameterError("SLURM_ARRAY_TASK_* variables are not integers") from None
    if (tid - lo) % step or (hi - lo) // step + 1 != count:
        raise ParameterError(f"array task ids must be one range (e.g. --array=0-{count - 1}) to shard "
                             f"automatically, got task {tid} of {count} in {lo}-{hi}:{step}; give --shard I/N")
    return (tid - lo) // step, count


def _shard(text: str | None, what: str, auto: bool = True) -> tuple[int, int] | None:
    """--shard I/N | slurm | none; without the flag, the Slurm array task when ``auto``."""
    from .validation import parse_shard
    if text is None and not auto:
        return None
    if text == "none":
        return None
    if text is None or text == "slurm":
        shard = slurm_array_shard()
        if shard is None and text == "slurm":
            raise ParameterError("--shard slurm needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT "
                                 "(an sbatch --array job)")
        if shard is not None and text is None:
            print(f"rands: {what} shard {shard[0]}/{shard[1]} (from Slurm array task "
                  f"{os.environ['SLURM_ARRAY_TASK_ID']}; --shard none runs everything)", file=sys.stderr)
        return shard
    return parse_shard(text)


def cmd_validate(args) -> int:
    from .validation import validate, validate_shard
    shard = _shard(args.shard, "validate")
    kwargs = dict(macroreps=args.macroreps, seed=args.seed,
                  problem_params=parse_pairs(args.problem_param, "--problem-param"),
                  **parse_pairs(args.param, "--param"))
    if shard is not None:
        if not args.output:
            raise ParameterError(f"validate shard {shard[0]}/{shard[1]} needs --output PATH for its shard file")
        _check_writable(args.output)
        part = validate_shard(args.problem, args.procedure, shard=shard, **kwargs)
        part.write(args.output)
        print(f"rands: validate shard {shard[0]}/{shard[1]}: macroreplications "
              f"{len(part.runs['index'])} of {args.macroreps} written to {args.output}", file=sys.stderr)
        return 0
    if args.output:
        _check_writable(args.output)
    v = validate(args.problem, args.procedure, **kwargs)
    _emit_validation(v, args)
    return 0


def _check_writable(path: str) -> None:
    """The folder of ``path`` exists or can be made, and is writable (checked before any work)."""
    folder = Path(path).absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"cannot write {path!r}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise ParameterError(f"cannot write {path!r}: folder {str(folder)!r} is not writable")


def _emit_validation(v, args) -> None:
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(v.to_dict(), indent=1))
    print(json.dumps(v.to_dict()) if args.json else v.row())


def cmd_merge(args) -> int:
    from .validation import merge_shards
    if args.output:
        _check_writable(args.output)
    v = merge_shards(args.shards)
    _emit_validation(v, args)
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
    ap = _Parser(prog="rands", description="Ranking and selection for simulation optimization")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a TOML configuration (or a sweep over several)")
    r.add_argument("config", nargs="+", help="one config, or several for a sweep (run in order)")
    r.add_argument("--shard", metavar="I/N|slurm|none",
                   help="run configs I, I+N, ... of the list (default with several configs inside an "
                        "sbatch --array job: the array task)")
    r.add_argument("--json", action="store_true", help="print the result record as one JSON object")
    r.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    r.add_argument("--checkpoint", help="checkpoint path (overrides [run] checkpoint)")
    r.add_argument("--output", help="write the result JSON here")
    r.add_argument("--quiet", action="store_true",
                   help="no progress bar (it is on by default when stderr is a terminal)")
    r.add_argument("--progress", action="store_true",
                   help="draw the bar even when stderr is not a terminal (mpiexec and srun pass "
                        "rank 0's stderr through a pipe); rank 0 only")
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
    v.add_argument("--shard", metavar="I/N|slurm|none",
                   help="run macroreplications I, I+N, ... and write a shard file to --output "
                        "(default inside an sbatch --array job: the array task)")
    v.add_argument("--output", help="write the result JSON (or the shard file) here")
    v.set_defaults(func=cmd_validate)

    mg = sub.add_parser("merge", help="join validation shard files into one validation result")
    mg.add_argument("shards", nargs="+", metavar="SHARD.json")
    mg.add_argument("--json", action="store_true")
    mg.add_argument("--output", help="write the merged result JSON here")
    mg.set_defaults(func=cmd_merge)

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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), like every other CLI error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"rands: error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. Every error is one line on stderr and exit code 2 (3: interrupted with a
    checkpoint written; 130: Ctrl-C); ``--debug`` (anywhere) or RANDS_DEBUG=1 adds the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("RANDS_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)

    def fail(exc: BaseException, message: str, code: int) -> int:
        if debug:
            import traceback
            traceback.print_exception(exc)
        print(message, file=sys.stderr)
        return code

    try:
        return args.func(args)
    except (ParameterError, SimulationError) as exc:
        return fail(exc, f"rands: error: {_one_line(exc)}", 2)
    except Interrupted as exc:
        return fail(exc, f"rands: {_one_line(exc)}", 3)
    except KeyboardInterrupt as exc:
        return fail(exc, "rands: interrupted (Ctrl-C)", 130)
    except MemoryError as exc:
        return fail(exc, f"rands: error: out of memory ({_one_line(exc)}); lower k, n0, the budget or "
                         "workers", 2)
    except Exception as exc:  # noqa: BLE001  (a bug or an unexpected environment: still one line)
        hint = "" if debug else " (run with --debug for the traceback)"
        return fail(exc, f"rands: error: {type(exc).__name__}: {_one_line(exc)}{hint}", 2)


if __name__ == "__main__":
    sys.exit(main())
