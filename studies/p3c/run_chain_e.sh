#!/bin/bash
# Chain E (16:01 UTC): split with a 10-sample pilot at k = 16384, and rho = 0.5 at k = 1024.
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
nice -n 10 python $S grid --k 16384 --reps 4 --ps 8 32 --rhos 0.9 0.99 --bases kn --methods split --pilot 10 --tag pilot10 > $L/grid_k16384_pilot10.log 2>&1
nice -n 10 python $S grid --k 1024 --reps 10 --bases kn --ps 4 16 32 --rhos 0.5 --methods split --pilot 10 --tag pilot10_rho05 > $L/grid_pilot10_rho05.log 2>&1
