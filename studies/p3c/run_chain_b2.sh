#!/bin/bash
# Chain B2 (15:30 UTC, replaces chain B; reordered by priority for the deadline).
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
# (no longer waits for the k=10^6 run)
nice -n 10 python $S pcs --reps 1000 --n0s 10 --methods split reuse dc --tag n0_10 > $L/pcs_n0_10.log 2>&1
nice -n 10 python $S ari --reps 10 > $L/ari.log 2>&1
nice -n 10 python $S rho0 --reps 10 --bases kn --ps 4 16 > $L/rho0.log 2>&1
nice -n 10 python $S cost --ks 10000 100000 1000000 --n_init 1 --tag tol > $L/cost_tol.log 2>&1
nice -n 10 python $S pcs --reps 300 --n0s 5 --methods split reuse dc --tag n0_5 > $L/pcs_n0_5.log 2>&1
