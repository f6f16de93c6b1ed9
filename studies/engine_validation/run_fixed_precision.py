"""Engine validation, fixed-precision part: PCS / PGS of Rinott, KN, KT and GSP.

Configurations: slippage (SC: mu_0 = delta, others 0) and monotone decreasing
means (MDM: mu_i = -i delta), k in {10, 100}, delta = 0.5, sigma = 1,
alpha = 0.05 (GSP: alpha1 = alpha2 = 0.025), n0 = 20 (GSP: n1 = 20, rbar = 5,
beta = 10, no timing stage). CRN rows use problems with common correlation
rho = 0.5 (rho is only realised under CRN). KT: g = 5, p = 2 partitions at
k = 10; g = 10, p = 4 at k = 100. Plus KT total samples / k on SC for
k = 100, 1000, 10^4 (g = 20, p = 8).

Usage (from the repository root; about 20 minutes on one busy core):
    nice -n 10 python studies/engine_validation/run_fixed_precision.py --macroreps 1000
        --scaling-macroreps 200 100 20 --out studies/engine_validation/results_fixed_precision.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import rands
from rands.procedures.fixed_precision.gsp import GSP
from rands.procedures.fixed_precision.kn import KN
from rands.procedures.fixed_precision.kt import KT
from rands.procedures.fixed_precision.rinott import Rinott

DELTA, SIGMA, ALPHA, N0, RHO_CRN = 0.5, 1.0, 0.05, 20, 0.5


def kt_params(k: int) -> dict:
    return {"g": 5, "n_groups": 2} if k <= 10 else {"g": 10, "n_groups": 4}


def procedures(k: int) -> dict:
    return {
        "Rinott": (Rinott(alpha=ALPHA, delta=DELTA, n0=N0), 0.0),
        "KN": (KN(alpha=ALPHA, delta=DELTA, n0=N0), 0.0),
        "KN crn": (KN(alpha=ALPHA, delta=DELTA, n0=N0, crn=True), RHO_CRN),
        "KT": (KT(alpha=ALPHA, delta=DELTA, n0=N0, **kt_params(k)), 0.0),
        "KT crn": (KT(alpha=ALPHA, delta=DELTA, n0=N0, crn=True, **kt_params(k)), RHO_CRN),
        "GSP": (GSP(alpha1=ALPHA / 2, alpha2=ALPHA / 2, delta=DELTA, n1=N0, rbar=5, beta=10), 0.0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--macroreps", type=int, default=1000)
    ap.add_argument("--scaling-macroreps", type=int, nargs=3, default=[200, 100, 20],
                    help="macroreps for the KT N/k study at k = 100, 1000, 10^4")
    ap.add_argument("--out", default="studies/engine_validation/results_fixed_precision.json")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    out = Path(args.out)
    results = {"settings": {"delta": DELTA, "sigma": SIGMA, "alpha": ALPHA, "n0": N0, "rho_crn": RHO_CRN,
                            "gsp": {"alpha1": ALPHA / 2, "alpha2": ALPHA / 2, "n1": N0, "rbar": 5, "beta": 10},
                            "kt": {"10": kt_params(10), "100": kt_params(100), "scaling": {"g": 20, "n_groups": 8}},
                            "macroreps": args.macroreps, "seed": args.seed},
               "rows": [], "kt_scaling": []}

    def dump() -> None:
        out.write_text(json.dumps(results, indent=1))

    for k in (10, 100):
        for ci, config in enumerate(("slippage", "mdm")):
            for pi, (name, (proc, rho)) in enumerate(procedures(k).items()):
                prob = rands.problems.make(config, k=k, delta=DELTA, sigma=SIGMA, rho=rho)
                t0 = time.perf_counter()
                v = rands.validate(prob, proc, macroreps=args.macroreps, seed=(args.seed, k, ci, pi))
                row = {**{key: val for key, val in v.to_dict().items() if key not in ("params", "problem")},
                       "procedure": name, "config": config, "k": k, "rho": rho, "params": proc.get_params(),
                       "seconds": time.perf_counter() - t0}
                results["rows"].append(row)
                dump()
                print(f"k={k:4d} {config:9s} {name:7s} PCS {v.pcs:.4f} [{v.pcs_ci[0]:.4f}, {v.pcs_ci[1]:.4f}] "
                      f"PGS {v.pgs:.4f} [{v.pgs_ci[0]:.4f}, {v.pgs_ci[1]:.4f}] "
                      f"N {v.mean_samples:.1f} +- {v.sd_samples:.1f}  ({row['seconds']:.0f} s)", flush=True)
    for k, reps in zip((100, 1000, 10_000), args.scaling_macroreps):
        prob = rands.problems.make("slippage", k=k, delta=DELTA, sigma=SIGMA)
        proc = KT(alpha=ALPHA, delta=DELTA, n0=N0, g=20, n_groups=8)
        t0 = time.perf_counter()
        v = rands.validate(prob, proc, macroreps=reps, seed=(args.seed, 7, k))
        row = {"k": k, "macroreps": reps, "pcs": v.pcs, "pcs_ci": list(v.pcs_ci), "mean_samples": v.mean_samples,
               "sd_samples": v.sd_samples, "samples_per_system": v.mean_samples / k,
               "mean_wall_time": v.mean_wall_time, "seconds": time.perf_counter() - t0}
        results["kt_scaling"].append(row)
        dump()
        print(f"KT scaling k={k:6d} reps={reps}: N/k {row['samples_per_system']:.2f}  PCS {v.pcs:.3f}  "
              f"wall/run {v.mean_wall_time:.2f} s", flush=True)


if __name__ == "__main__":
    main()
