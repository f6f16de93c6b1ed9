#!/bin/bash
# Chain B3 (15:36 UTC, replaces B2: CPU starved (load ~24), so fewer macroreps where they matter less).
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
nice -n 10 python $S ari --reps 10 > $L/ari.log 2>&1
nice -n 10 python $S pcs --reps 1000 --other_reps 300 --n0s 10 --methods split reuse dc --tag n0_10 > $L/pcs_n0_10.log 2>&1
nice -n 10 python $S rho0 --reps 10 --bases kn --ps 4 16 > $L/rho0.log 2>&1
nice -n 10 python $S cost --ks 10000 100000 1000000 --n_init 1 --tag tol > $L/cost_tol.log 2>&1
