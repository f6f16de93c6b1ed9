#!/bin/bash
# Runs the whole study in two background chains (2-core machine). Logs in studies/p3c/logs/.
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
( nice -n 10 python $S grid --k 1024 --reps 40 > $L/grid_k1024.log 2>&1 ) &
( nice -n 10 python $S cost > $L/cost.log 2>&1
  nice -n 10 python $S big > $L/big.log 2>&1
  nice -n 10 python $S ari --reps 20 > $L/ari.log 2>&1
  nice -n 10 python $S pcs --reps 1000 --methods split reuse dc > $L/pcs.log 2>&1
  nice -n 10 python $S rho0 --reps 30 > $L/rho0.log 2>&1
  nice -n 10 python $S grid --k 16384 --reps 6 --ps 2 8 32 --rhos 0.9 0.99 --bases kn --methods split oracle dc > $L/grid_k16384.log 2>&1
) &
wait
