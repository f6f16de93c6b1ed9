"""``rands.select``: run one procedure on one problem."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import problems as _problems
from . import procedures as _procedures
from .errors import ParameterError
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
           checkpoint=None, progress: bool | Any = False, **params) -> SelectionResult:
    """Select the best system of ``problem`` with ``procedure``.

    Parameters
    ----------
    problem : Problem or built-in name (then ``problem_params`` are its parameters).
    procedure : Procedure or name ("rinott", "kn", "gsp", "kt", "equal", "ocba", "efg",
        "efg+", "fbkt", "p3c", "dc", ...); ``**params`` are its parameters.
    seed : int or sequence of ints; the same seed gives the same result.
    executor : where samples are simulated (``rands.parallel`` backends); default serial.
    checkpoint : a checkpointer (``rands.checkpoint``) or None.
    progress : True for a tqdm bar, or a callable(total_samples).
    """
    prob = resolve_problem(problem, problem_params)
    proc = resolve_procedure(procedure, params)
    proc.check_problem(prob)
    streams = Streams(seed, crn=proc.crn_enabled)
    bar = None
    callback = None
    if progress is True:
        from tqdm.auto import tqdm
        bar = tqdm(total=proc.budget_limit(prob), unit="samples", desc=proc.name, leave=False)
        last = [0]

        def callback(total: int) -> None:
            bar.update(total - last[0])
            last[0] = total
    elif callable(progress):
        callback = progress
    t0 = time.perf_counter()
    ctx = SamplingContext(prob, streams, budget=proc.budget_limit(prob), executor=executor,
                          checkpointer=checkpoint, progress=callback)
    try:
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
        best=best, total_samples=int(ctx.total), sample_sizes=ctx.n.copy(), means=ctx.means(),
        wall_time=wall, procedure=proc.name, params=proc.get_params(), seed=streams.seed,
        problem=prob.spec() if _small_spec(prob) else {"name": prob.name, "k": prob.k},
        guarantee=proc.guarantee, best_label=prob.label(best), trace=ctx.trace, accounting=acc,
        extras=out.extras)


def _small_spec(prob: Problem) -> bool:
    try:
        spec = prob.spec()
    except Exception:  # noqa: BLE001
        return False
    return all(not (isinstance(v, list) and len(v) > 100) for v in spec.values())
