"""KN: the fully sequential procedure of Kim & Nelson (2001)."""
from __future__ import annotations

import numpy as np

from ...params import ALPHA, CRN, DELTA, ints, optional
from ..base import Procedure, ProcedureOutput
from ._core import check_common, kn_stage
from .constants import kn_h2


class KN(Procedure):
    """Kim & Nelson's fully sequential indifference-zone procedure.

    n0 samples each; eta = 1/2 [(2 alpha/(k-1))^(-2/(n0-1)) - 1], h^2 = 2 eta (n0-1),
    S_il^2 the first-stage sample variance of X_i - X_l. At stage r >= n0 system
    i is eliminated if some surviving l has
    sum_{j<=r} (X_lj - X_ij) > max(0, h^2 S_il^2 / (2 c delta) - delta r / (2 c));
    survivors get one more sample; stop when one survives. ``c`` (a positive integer,
    default 1) is Kim & Nelson's boundary parameter: a larger c starts the boundary lower
    and flattens it (h^2 from Fabian's bound for c, :func:`.constants.kn_h2`; the region
    closes at h^2 S_il^2 / delta^2 with the larger h^2), which ends matches with a clear
    leader sooner and near-ties later. Guarantee:
    PCS >= 1-alpha under the IZ; normal outputs, independent systems or CRN.
    Pairwise variances are computed on the fly from the k x n0 first-stage
    matrix (memory O(k n0)). ``lookahead`` stages are drawn per block (None:
    adaptive) and screened one by one: decisions and used sample sizes do not
    depend on it (see :mod:`.kn_engine`).

    Kim, S.-H. & Nelson, B. L. (2001). ACM TOMACS 11(3), 251-273.
    """

    name = "kn"
    kind = "fixed_precision"
    guarantee = "PCS >= 1-alpha under the indifference zone"
    assumptions = "normal outputs; independent systems or common random numbers"
    supports_crn = True
    reference = "Kim & Nelson (2001), ACM TOMACS 11(3):251-273"
    _parameter_constraints = {"alpha": ALPHA, "delta": DELTA, "n0": ints(2), "crn": CRN,
                              "lookahead": optional(ints(1)), "c": ints(1)}

    def __init__(self, alpha: float = 0.05, delta: float = 0.1, n0: int = 20, crn: bool = False,
                 lookahead: int | None = None, c: int = 1):
        self.alpha = alpha
        self.delta = delta
        self.n0 = n0
        self.crn = crn
        self.lookahead = lookahead
        self.c = c
        self._validate_params()

    def _validate_params(self) -> None:
        Procedure._validate_params(self)
        check_common(self.alpha, self.delta, self.n0)
        super()._validate_params()

    def run(self, ctx) -> ProcedureOutput:
        st = dict(ctx.restored) if ctx.restored is not None else {}
        best = kn_stage(ctx, np.arange(ctx.k), alpha=float(self.alpha), delta=float(self.delta),
                        n0=int(self.n0), crn=bool(self.crn), st=st, save=lambda: ctx.boundary(st),
                        lookahead=self.lookahead, c=int(self.c))
        h2 = kn_h2(ctx.k, float(self.alpha), int(self.n0), int(self.c))
        eta = h2 / (2 * int(self.c) * (int(self.n0) - 1))
        return ProcedureOutput(best=int(best), extras={"eta": eta, "h2": h2,
                                                       "stages": int(np.asarray(st["r"])[0]) - int(self.n0)})
