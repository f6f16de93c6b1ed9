"""Equal allocation: the fixed-budget baseline."""
from __future__ import annotations

import numpy as np

from ...errors import check_int
from ..base import Procedure, ProcedureOutput, check_budget


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

    def __init__(self, budget: int = 1000, crn: bool = False):
        self.budget = budget
        self.crn = crn
        self._validate_params()

    def _validate_params(self) -> None:
        check_int("budget", self.budget, low=2)
        super()._validate_params()

    def check_problem(self, problem) -> None:
        super().check_problem(problem)
        check_budget(self.budget, 1, problem.k)

    def budget_limit(self, problem) -> int:
        return int(self.budget)

    def run(self, ctx) -> ProcedureOutput:
        per = int(self.budget) // ctx.k
        state = ctx.restored or {}
        if not state.get("done"):
            ctx.draw(np.arange(ctx.k), per)
            ctx.log("allocate", per_system=per)
        means = ctx.means()
        return ProcedureOutput(best=int(np.argmax(means)))
