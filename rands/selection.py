"""``rands.select``: run one procedure on one problem."""
from __future__ import annotations

import inspect
import time
from typing import Any

import numpy as np

from . import problems as _problems
from . import procedures as _procedures
from .errors import ParameterError
from .futures_backend import as_executor
from .problems.base import Problem
from .procedures.base import Procedure
from .results import SelectionResult
from .sampling import SamplingContext
from .streams import Streams


def resolve_problem(problem, problem_params: dict | None = None) -> Problem:
    if isinstance(problem, Problem):
        if problem_params:
            raise ParameterError("problem_params is only for a problem given by name")
        return problem
    if isinstance(problem, str):
        return _problems.make(problem, **(problem_params or {}))
    raise ParameterError(f"problem must be a Problem or a built-in name ({', '.join(_problems.names())}), "
                         f"got {problem!r}")


def resolve_procedure(procedure, params: dict) -> Procedure:
    if isinstance(procedure, Procedure):
        if params:
            raise ParameterError(f"parameters {sorted(params)} given with a procedure object; "
                                 "set them on the object instead")
        return procedure
    if isinstance(procedure, str):
        return _procedures.make(procedure, **params)
    raise ParameterError(f"procedure must be a Procedure or a name ({', '.join(_procedures.names(False))}), "
                         f"got {procedure!r}")


def select(problem, procedure, *, seed, problem_params: dict | None = None, executor=None,
           checkpoint=None, progress: bool | Any = False, sim_timeout: float | None = None,
           **params) -> SelectionResult:
    """Select the best system of ``problem`` with ``procedure``.

    Parameters
    ----------
    problem : Problem or built-in name (then ``problem_params`` are its parameters).
    procedure : Procedure or name ("rinott", "kn", "gsp", "kt", "equal", "ocba", "efg",
        "efg+", "fbkt", "p3c", "dc", ...); ``**params`` are its parameters.
    seed : int or sequence of ints; the same seed gives the same result.
    executor : where samples are simulated: a ``rands.parallel`` backend or any
        ``concurrent.futures.Executor`` (ProcessPoolExecutor, MPIPoolExecutor, a Dask
        client's executor); default serial. Results are the same on every one.
    checkpoint : a checkpointer (``rands.checkpoint``) or None.
    progress : True for a progress bar (:class:`rands.progress.ProgressBar`: the budget as
        total for a fixed-budget procedure, the running estimate for a fixed-precision one;
        drawn on rank 0 only under an MPI launcher), or a callable
        ``progress(total_samples, **info)`` (``info``: contention, estimate, simulated).
    sim_timeout : the hang guard (``rands.timelimit``): seconds one simulate call (a block; a
        chunk on a worker) may run; over it the run ends with a SimulationError naming system,
        replication (and rank). Off by default on the serial backend; a parallel executor's
        heartbeat uses it too (docs/parallel.md).
    """
    prob = resolve_problem(problem, problem_params)
    proc = resolve_procedure(procedure, params)
    if sim_timeout is not None:
        from .params import SIM_TIMEOUT, check_param
        check_param("select", "sim_timeout", sim_timeout, SIM_TIMEOUT)
    proc.check_problem(prob)
    warn_small_first_stage(proc, prob.k)
    from .preflight import check_memory, first_stage_samples   # before the context allocates
    check_memory(prob.k, first_stage_samples(proc), proc.budget_limit(prob),
                 what=f"{proc.name} on {prob.name} (k={prob.k:,})")
    streams = Streams(seed, crn=proc.crn_enabled)
    bar = None
    callback = None
    if progress is True:
        from .progress import ProgressBar, launcher_rank
        bar = ProgressBar(proc.budget_limit(prob), desc=proc.name, disable=launcher_rank() != 0)
        callback = bar
    elif callable(progress):
        callback = progress
    recorder = _ContentionRecorder(callback)
    executor = as_executor(executor)          # a concurrent.futures.Executor works too
    if executor is not None and hasattr(executor, "reset_accounting"):
        executor.reset_accounting()     # the accounting of this selection only
    t0 = time.perf_counter()
    ctx = SamplingContext(prob, streams, budget=proc.budget_limit(prob), executor=executor,
                          checkpointer=checkpoint, progress=recorder)
    if sim_timeout is not None and hasattr(ctx.executor, "sim_timeout"):
        ctx.executor.sim_timeout = float(sim_timeout)      # the coordinator's heartbeat
    from .timelimit import limit
    try:
        with limit(sim_timeout):
            out = proc.run(ctx)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    if checkpoint is not None:
        wall += checkpoint.previous_wall_time
    best = int(out.best)
    acc = ctx.executor.accounting(wall) if hasattr(ctx.executor, "accounting") else {}
    return SelectionResult(
        best=best, total_samples=int(ctx.total), samples_simulated=int(ctx.simulated),
        sample_sizes=ctx.n.copy(), means=ctx.means(),
        variances=ctx.variances(), contention=recorder.points,
        wall_time=wall, procedure=proc.name, params=proc.get_params(), seed=streams.seed,
        problem=prob.spec() if _small_spec(prob) else {"name": prob.name, "k": prob.k},
        guarantee=proc.guarantee, best_label=prob.label(best), trace=ctx.trace, accounting=acc,
        extras=out.extras)


#: procedures whose consistency needs the first stage n0 to grow with the budget
N0_MUST_GROW = {
    "ocba": "OCBA allocates by estimated means and variances; with a small n0 an unlucky first "
            "stage can starve the best system for the whole run (n0 = 5: 10 of 100 runs)",
    "efg": "EFG explores n0 per system once, then is greedy; a small n0 locks it in on a wrong "
           "system (newsvendor, k = 17, n0 = 10: PGS 0.52 at N = 1,700, 0.54 at N = 6,800)",
}
#: the warning fires when the first stage n0 * k is below this share of the budget
N0_SHARE = 0.2


def warn_small_first_stage(proc: Procedure, k: int) -> None:
    """Warn (UserWarning) when an OCBA or EFG first stage n0 * k is under ``N0_SHARE`` of the budget:
    these procedures are consistent only if n0 grows with the budget."""
    if proc.name not in N0_MUST_GROW:
        return
    n0, budget = getattr(proc, "n0", None), getattr(proc, "budget", None)
    if not isinstance(n0, int) or not isinstance(budget, int) or n0 * k >= N0_SHARE * budget:
        return
    import warnings
    need = int(np.ceil(N0_SHARE * budget / k))
    warnings.warn(f"{proc.name}: the first stage n0*k = {n0}*{k} = {n0 * k:,} is "
                  f"{n0 * k / budget:.0%} of the budget {budget:,}; {N0_MUST_GROW[proc.name]}. "
                  f"n0 must grow with the budget for {proc.name} to be consistent: consider "
                  f"n0 >= {need} ({N0_SHARE:.0%} of the budget)", UserWarning, stacklevel=3)


class _ContentionRecorder:
    """Progress callback that keeps (samples used, systems in contention) whenever the count
    changes (at most ``limit`` points: halved by keeping every other one when full) and passes
    every call on to ``inner`` (with keywords only if ``inner`` takes them)."""

    def __init__(self, inner, limit: int = 2000) -> None:
        self.inner = inner
        self.limit = limit
        self.points: list[list[int]] = []
        try:
            params = inspect.signature(inner).parameters.values() if inner is not None else []
        except (TypeError, ValueError):
            params = []
        self._kw = any(p.kind == p.VAR_KEYWORD for p in params)

    def __call__(self, total: int, **info) -> None:
        c = info.get("contention")
        if c is not None and (not self.points or self.points[-1][1] != int(c)):
            self.points.append([int(total), int(c)])
            if len(self.points) > self.limit:
                self.points = self.points[:-1:2] + self.points[-1:]
        if self.inner is not None:
            if self._kw:
                self.inner(total, **info)
            else:
                self.inner(total)


def _small_spec(prob: Problem) -> bool:
    try:
        spec = prob.spec()
    except Exception:  # noqa: BLE001
        return False
    return all(not (isinstance(v, list) and len(v) > 100) for v in spec.values())
