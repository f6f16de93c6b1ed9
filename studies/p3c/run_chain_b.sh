#!/bin/bash
# Chain B (restarted 15:16 UTC after the `big` run already in progress finishes).
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
while kill -0 19587 2>/dev/null; do sleep 5; done
nice -n 10 python $S pcs --reps 1000 --n0s 10 --methods split reuse dc --tag n0_10 > $L/pcs_n0_10.log 2>&1
nice -n 10 python $S ari --reps 10 > $L/ari.log 2>&1
nice -n 10 python $S pcs --reps 300 --n0s 5 --methods split reuse oracle dc --tag n0_5 > $L/pcs_n0_5.log 2>&1
nice -n 10 python $S rho0 --reps 15 --bases kn > $L/rho0.log 2>&1
nice -n 10 python $S cost --ks 10000 100000 1000000 --n_init 1 --tag tol > $L/cost_tol.log 2>&1
