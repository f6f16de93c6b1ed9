"""Rinott's two-stage procedure (Rinott 1978)."""
from __future__ import annotations

import numpy as np

from ...params import ALPHA, CRN, DELTA, ints
from ..base import Procedure, ProcedureOutput
from ._core import check_common, rinott_stage
from .constants import rinott_h


class Rinott(Procedure):
    """Rinott's two-stage indifference-zone procedure.

    n0 samples of every system; N_i = max(n0, ceil((h S_i / delta)^2)) with
    h = h(k, 1-alpha, n0-1) (see :func:`~.constants.rinott_h`); N_i - n0 more;
    select the largest sample mean. Guarantee: PCS >= 1-alpha when the best
    mean exceeds the others by >= delta; normal outputs, independent systems,
    unknown and unequal variances. Common random numbers are refused.

    Rinott, Y. (1978). Comm. Statist. A 7(8), 799-811.
    """

    name = "rinott"
    kind = "fixed_precision"
    guarantee = "PCS >= 1-alpha under the indifference zone"
    assumptions = "normal outputs; independent systems (no CRN); unknown unequal variances"
    supports_crn = False
    reference = "Rinott (1978), Comm. Statist. A 7(8):799-811"
    _parameter_constraints = {"alpha": ALPHA, "delta": DELTA, "n0": ints(2), "crn": CRN}

    def __init__(self, alpha: float = 0.05, delta: float = 0.1, n0: int = 20, crn: bool = False):
        self.alpha = alpha
        self.delta = delta
        self.n0 = n0
        self.crn = crn
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_common(self.alpha, self.delta, self.n0)
        super()._validate_params()

    def run(self, ctx) -> ProcedureOutput:
        st = dict(ctx.restored) if ctx.restored is not None else {}
        best = rinott_stage(ctx, np.arange(ctx.k), alpha=float(self.alpha), delta=float(self.delta),
                            n0=int(self.n0), k_const=ctx.k, st=st, save=lambda: ctx.boundary(st))
        h = rinott_h(ctx.k, 1.0 - float(self.alpha), int(self.n0) - 1)
        return ProcedureOutput(best=int(best), extras={"h": h})
