"""Self-check of a backend: run small selections and write their results as JSON.

    python -m rands.parallel.check --backend serial --out serial.json
    mpiexec -n 3 python -m rands.parallel.check --backend mpi --out mpi3.json
    python -m rands.parallel.check --backend processes --workers 2 --out p2.json

The records (best, total, sample sizes, means as exact float hex) of any two
backends must be identical: sample (i, r) depends only on (seed, i, r). With
``--fault raise|nan|hang`` a simulation on rank 1 fails (and with ``hang``
rank 2 blocks in a 60 s simulation) to show that the run stops with the error
naming system, replication and rank, and never hangs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from rands.errors import SimulationError
from rands.problems.normal import Slippage

#: name -> (problem params, procedure params); small and fast, every code path exercised
CASES: dict[str, tuple[dict, dict]] = {
    "kn": ({"k": 20, "delta": 0.5}, {"alpha": 0.05, "delta": 0.5, "n0": 10}),
    "kt": ({"k": 60, "delta": 0.5}, {"alpha": 0.05, "delta": 0.5, "n0": 10, "g": 5, "n_groups": 3}),
    "fbkt": ({"k": 60, "delta": 0.5}, {"budget": 6000, "n0": 8, "phi": 3, "n_groups": 2}),
    "ocba": ({"k": 30, "delta": 0.5}, {"budget": 3000}),
    "efg": ({"k": 30, "delta": 0.5}, {"budget": 3000, "n0": 10}),
    "gsp": ({"k": 40, "delta": 0.5}, {"alpha1": 0.025, "alpha2": 0.025, "delta": 0.5, "n1": 20,
                                      "rbar": 4, "beta": 20.0}),
    "p3c": ({"k": 64, "delta": 0.5, "rho": 0.5}, {"base": "kn", "alpha": 0.05, "delta": 0.5, "n0": 10,
                                                 "n_clusters": 4}),
    "dc": ({"k": 64, "delta": 0.5}, {"base": "kn", "alpha": 0.05, "delta": 0.5, "n0": 10, "n_groups": 4}),
    "pass": ({"k": 30, "delta": 0.5}, {"alpha": 0.05, "n0": 10, "batch": 20, "max_samples": 400,
                                       "asynchronous": False}),
    # one stage at a time: the same decisions as the default (adaptive) look-ahead
    "kn/lookahead=1": ({"k": 20, "delta": 0.5}, {"alpha": 0.05, "delta": 0.5, "n0": 10, "lookahead": 1}),
    "kt/lookahead=1": ({"k": 60, "delta": 0.5}, {"alpha": 0.05, "delta": 0.5, "n0": 10, "g": 5,
                                                 "n_groups": 3, "lookahead": 1}),
    # a group above SMALL_GROUP (48): the candidate-pair screening
    "kn/k=150": ({"k": 150, "delta": 0.5}, {"alpha": 0.05, "delta": 0.5, "n0": 10}),
    "kt/crn": ({"k": 60, "delta": 0.5}, {"alpha": 0.05, "delta": 0.5, "n0": 10, "g": 5, "n_groups": 3,
                                         "crn": True}),
    # KN's boundary parameter c = 2 (one stage at a time), alone and inside P3C's clusters
    "kn/c=2": ({"k": 20, "delta": 0.5}, {"alpha": 0.05, "delta": 0.5, "n0": 10, "c": 2, "lookahead": 1}),
    "p3c/kn_c=2": ({"k": 64, "delta": 0.5, "rho": 0.5}, {"base": "kn", "alpha": 0.05, "delta": 0.5, "n0": 10,
                                                        "n_clusters": 4, "kn_c": 2}),
}


def procedure_of(case: str) -> str:
    """The procedure a case runs ("kt/lookahead=1" -> "kt")."""
    return case.split("/", 1)[0]


def where() -> int:
    """This process's rank (MPI) or worker number (processes); 0 on the coordinator."""
    if "mpi4py.MPI" in sys.modules:
        return sys.modules["mpi4py.MPI"].COMM_WORLD.Get_rank()
    import multiprocessing as mp
    name = mp.current_process().name
    return int(name.rsplit("-", 1)[1]) if name.startswith("rands-worker-") else 0


class FaultySlippage(Slippage):
    """Slippage whose simulation fails on one rank (for the fault tests)."""

    name = "faulty-slippage"

    def __init__(self, k: int = 40, mode: str = "raise", system: int = 0, rank: int = 1, **kw):
        super().__init__(k=k, **kw)
        self.mode, self.fault_system, self.fault_rank = mode, int(system), int(rank)

    def simulate(self, systems, reps, streams):
        me = where()
        if self.mode == "hang" and me == 2:
            time.sleep(60.0)
        if me == self.fault_rank and (np.asarray(systems) == self.fault_system).any():
            if self.mode in ("raise", "hang"):
                raise RuntimeError("injected fault")
            out = super().simulate(systems, reps, streams)
            out[np.flatnonzero(np.asarray(systems) == self.fault_system)[0]] = np.nan
            return out
        return super().simulate(systems, reps, streams)


def record(result) -> dict:
    return {"best": int(result.best), "total": int(result.total_samples),
            "sample_sizes": [int(n) for n in result.sample_sizes],
            "means": [float(m).hex() for m in result.means]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="serial",
                    choices=["serial", "processes", "mpi", "process-pool", "mpi-pool", "dask"],
                    help="process-pool: concurrent.futures.ProcessPoolExecutor; mpi-pool: "
                         "mpi4py.futures.MPIPoolExecutor (run under `mpiexec -n P python -m "
                         "mpi4py.futures -m rands.parallel.check ...`); dask: a local Dask "
                         "cluster's Client.get_executor() (dask[distributed])")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--procedures", default=",".join(CASES))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out")
    ap.add_argument("--fault", choices=["raise", "nan", "hang"])
    args = ap.parse_args(argv)

    import rands
    from rands.parallel import make_executor

    cleanup = []
    if args.backend in ("process-pool", "mpi-pool", "dask"):
        from rands.futures_backend import FuturesExecutor
        if args.backend == "dask":
            from dask.distributed import Client, LocalCluster
            cluster = LocalCluster(n_workers=args.workers or 2, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
            cleanup = [client.close, cluster.close]
            pool = client.get_executor()
        elif args.backend == "process-pool":
            import concurrent.futures as cf
            import multiprocessing as mp
            pool = cf.ProcessPoolExecutor(args.workers or 2, mp_context=mp.get_context("forkserver"))
        else:
            from mpi4py.futures import MPIPoolExecutor
            pool = MPIPoolExecutor()
        ex = FuturesExecutor(pool, workers=args.workers or getattr(pool, "_max_workers", None) or 2,
                             own=True, local_threshold_s=0.0)
    elif args.backend == "serial":
        ex = make_executor("serial")
    else:   # a check of distribution, not of speed: ship every block and every set of matches
        ex = make_executor(args.backend, args.workers, local_threshold_s=0.0, min_ship_cost_s=0.0)
    if ex is None:          # an MPI worker rank: served until rank 0 closed
        return 0
    ex.group_ship_threshold_s = 0.0
    out: dict = {"backend": args.backend, "workers": ex.n_workers, "results": {}}
    t0 = time.perf_counter()
    try:
        if args.fault:
            try:
                rands.select(FaultySlippage(k=40, mode=args.fault), "equal", seed=args.seed, executor=ex,
                             budget=40 * 2000)
            except SimulationError as exc:
                print(f"rands: error: {exc}", file=sys.stderr, flush=True)
                out["error"] = str(exc)
                out["seconds_to_error"] = time.perf_counter() - t0
                raise
        available = set(rands.procedures.names())
        for name in args.procedures.split(","):
            if procedure_of(name) not in available:
                out["results"][name] = None
                continue
            prob_params, params = CASES[name]
            res = rands.select("slippage", procedure_of(name), seed=args.seed, problem_params=prob_params,
                               executor=ex, **params)
            out["results"][name] = record(res)
            out.setdefault("accounting", {})[name] = res.accounting
    except SimulationError as exc:
        if not args.fault:
            print(f"rands: error: {exc}", file=sys.stderr, flush=True)
            out["error"] = str(exc)
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(out, fh)
        ex.close()
        for fn in cleanup:
            fn()
        return 2
    ex.close()
    for fn in cleanup:
        fn()
    out["seconds"] = time.perf_counter() - t0
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh)
        os.replace(tmp, args.out)
    else:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
