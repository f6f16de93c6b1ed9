"""Would a better first stage close the k = 4096 goal misses? P3C as shipped (n0_auto) against
P3C with one fixed first stage n0 for the within and final stages (n0_auto off), on the regime
map's seeds (16, k, p, rho*100, delta*10, rep), delta = 0.1.

    python studies/p3c/n0_oracle.py 4096 8 0.9 20      # k p rho macroreps

Prints the mean total samples per system (+- SE) for each variant and records them in
studies/p3c/results/n0_oracle_k{k}_p{p}_rho{rho}.json.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

import rands

VARIANTS = {"auto": {}, "n0=20": {"n0_auto": False, "n0": 20}, "n0=30": {"n0_auto": False, "n0": 30},
            "n0=40": {"n0_auto": False, "n0": 40}, "n0=60": {"n0_auto": False, "n0": 60}}


def main(k: int, p: int, rho: float, reps: int, d: float = 0.1) -> None:
    prob = rands.problems.make("clustered", k=k, p=p, rho=rho, delta=d)
    rows = {}
    for name, extra in VARIANTS.items():
        tot, t = [], time.time()
        for rep in range(reps):
            params = {"alpha": 0.05, "delta": d, "n0": 10, "base": "kn", "n_clusters": p, **extra}
            r = rands.select(prob, "p3c", seed=(16, k, p, int(rho * 100), int(d * 10), rep), **params)
            tot.append(r.total_samples / k)
        print(f"{name:6s} {np.mean(tot):6.1f} +- {np.std(tot, ddof=1) / np.sqrt(reps):.1f}  n0 within/final "
              f"{r.extras.get('n0_within')}/{r.extras.get('n0_final')}  {time.time() - t:.0f} s", flush=True)
        rows[name] = {"per_system_mean": float(np.mean(tot)), "se": float(np.std(tot, ddof=1) / np.sqrt(reps)),
                      "n0_within": r.extras.get("n0_within"), "n0_final": r.extras.get("n0_final"),
                      "per_system": [float(x) for x in tot]}
    out = Path(__file__).resolve().parent / "results" / f"n0_oracle_k{k}_p{p}_rho{rho:g}.json"
    out.write_text(json.dumps({"command": "python studies/p3c/n0_oracle.py " + " ".join(sys.argv[1:]),
                               "k": k, "p": p, "rho": rho, "delta": d, "macroreps": reps, "variants": rows},
                              indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
