"""Issue 16: the cost floor of KN inside one cluster, to tell which goal cells any KN-type
within stage can reach.

A standalone simulation of Kim & Nelson's rule (boundary parameter c, h^2 from
rands.procedures.fixed_precision.constants.kn_h2) in one cluster of m equicorrelated systems
(CRN, correlation rho, unit variances, pair variance 2 (1 - rho)): "best" = system 0 delta
above m - 1 tied systems, "tied" = all m tied. Known variances (S_il^2 = 2 (1 - rho), h^2 the
limit as n0 -> infinity, first screening after one sample) give the floor no variance
estimate can beat; with df degrees of freedom and a first screening at r0 (pilot + n0) it is
P3C's within stage (checked against P3C: c = 1, df 29, r0 52 gives 124 samples a system here,
P3C's pilot + within stage measured 123 at k = 4096, p = 16, rho = 0.9). The mix is one best
cluster and p - 1 tied ones (the slippage benchmark). Samples per system, mean of ``reps``.

    python studies/p3c/kn_floor.py --reps 10 --out kn_floor
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from scipy import optimize

from rands.procedures.fixed_precision.constants import kn_h2

HERE = os.path.dirname(os.path.abspath(__file__))


def h2_known(m: int, alpha: float, c: int) -> float:
    """kn_h2's limit as nu -> infinity: Fabian's sum with exp(-y (2c - l) l), h^2 = 2 c^2 y."""
    beta = alpha / (m - 1)
    g = lambda y: sum((-1) ** (l + 1) * (1 - 0.5 * (l == c)) * np.exp(-y * (2 * c - l) * l)  # noqa: E731
                      for l in range(1, c + 1)) - beta
    return 2 * c * c * optimize.brentq(g, 1e-9, 100.0)


def cluster_cost(m, rho, delta, alpha, c, df, r0, best, rng) -> tuple[float, bool]:
    """Mean samples per system of KN(c) in one cluster; (cost, best kept)."""
    sd2 = 2 * (1 - rho)
    if df is None:
        h2, s2 = h2_known(m, alpha, c), np.full((m, m), sd2)
    else:
        h2 = kn_h2(m, alpha, df + 1, c)
        e = rng.standard_normal((df + 1, m)) * np.sqrt(1 - rho)
        e -= e.mean(axis=0)
        s2 = ((e[:, :, None] - e[:, None, :]) ** 2).sum(axis=0) / df
    mu = np.zeros(m)
    if best:
        mu[0] = delta
    alive = np.ones(m, dtype=bool)
    sums = np.zeros(m)
    used = np.zeros(m)
    r = 0
    while alive.sum() > 1:
        r += 1
        x = mu + np.sqrt(1 - rho) * rng.standard_normal(m)      # the common part cancels in pairs
        sums[alive] += x[alive]
        used[alive] += 1
        if r < r0:
            continue
        a = np.flatnonzero(alive)
        diff = sums[a][None, :] - sums[a][:, None]
        w = np.maximum(0.0, h2 * s2[np.ix_(a, a)] / (2 * c * delta) - delta * r / (2 * c))
        alive[a[(diff > w).any(axis=1)]] = False
        if r >= h2 * s2.max() / delta ** 2:
            break
    return float(used.mean()), bool(alive[0]) if best else True


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=256)
    ap.add_argument("--p", type=int, default=16)
    ap.add_argument("--rhos", type=float, nargs="+", default=[0.9, 0.95])
    ap.add_argument("--delta", type=float, default=0.1)
    ap.add_argument("--alpha", type=float, default=0.0475, help="alpha_w (P3C's alpha_split*alpha there)")
    ap.add_argument("--within", nargs="+", default=["0.9:29:52", "0.95:19:40"],
                    help="rho:df:r0 of P3C's within stage in the goal cells (n0_within - 1, pilot + n0_within)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default="kn_floor")
    a = ap.parse_args(argv)
    rows = []
    within = {float(w.split(":")[0]): tuple(int(v) for v in w.split(":")[1:]) for w in a.within}
    for rho in a.rhos:
        df_w, r0_w = within.get(rho, (29, 52))
        for c, df, r0 in [(1, None, 1), (2, None, 1), (3, None, 1), (1, df_w, r0_w), (2, df_w, r0_w),
                          (3, df_w, r0_w)]:
            rng = np.random.default_rng([int(rho * 100), c, df or 0])
            res = {}
            for best in (True, False):
                v = [cluster_cost(a.m, rho, a.delta, a.alpha, c, df, r0, best, rng) for _ in range(a.reps)]
                res[best] = (float(np.mean([x[0] for x in v])), float(np.std([x[0] for x in v]) / np.sqrt(a.reps)),
                             float(np.mean([x[1] for x in v])))
            mix = (res[True][0] + (a.p - 1) * res[False][0]) / a.p
            row = {"m": a.m, "p": a.p, "rho": rho, "delta": a.delta, "alpha_w": a.alpha, "c": c,
                   "df": df, "r0": r0, "best_cluster": res[True][0], "best_cluster_se": res[True][1],
                   "best_kept": res[True][2], "tied_cluster": res[False][0], "tied_cluster_se": res[False][1],
                   "mix": mix, "reps": a.reps}
            rows.append(row)
            print(json.dumps(row), flush=True)
    with open(os.path.join(HERE, "results", os.path.basename(a.out) + ".json"), "w") as f:
        json.dump({"command": "python studies/p3c/kn_floor.py " + " ".join(argv or []), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
