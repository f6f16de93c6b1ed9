"""Equal allocation: the fixed-budget baseline."""
from __future__ import annotations

import numpy as np

from ...errors import check_int
from ...params import CRN, ints
from ..base import Procedure, ProcedureOutput, check_budget
from ._common import argmax_first, draw_chunked, restored_state


class EqualAllocation(Procedure):
    """Give every system floor(budget / k) samples; select the largest mean.

    Guarantee: none at finite budget; consistent as budget -> infinity. Its PCS
    at budget N = c*k decays as k grows (Hong, Jiang & Zhong 2022).
    """

    name = "equal"
    kind = "fixed_budget"
    guarantee = "none at finite budget (consistent)"
    assumptions = "any output distribution; CRN allowed"
    supports_crn = True
    reference = "baseline"
    _parameter_constraints = {"budget": ints(2), "crn": CRN}

    def __init__(self, budget: int = 1000, crn: bool = False):
        self.budget = budget
        self.crn = crn
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_int("budget", self.budget, low=2)
        super()._validate_params()

    def check_problem(self, problem) -> None:
        super().check_problem(problem)
        check_budget(self.budget, 1, problem.k)

    def budget_limit(self, problem) -> int:
        return int(self.budget)

    def run(self, ctx) -> ProcedureOutput:
        per = int(self.budget) // ctx.k
        state = restored_state(ctx)
        if not state.get("done"):
            # chunked: same samples as one draw, without (k x per) temporaries for large k
            draw_chunked(ctx, np.arange(ctx.k, dtype=np.int64), per)
            ctx.log("allocate", per_system=per)
            ctx.boundary({"done": 1})
        return ProcedureOutput(best=argmax_first(ctx.means()))
