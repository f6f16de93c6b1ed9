#!/bin/bash
# Chain F (16:14 UTC): larger p at k = 16384 (where does the gain start?), and more DC macroreps at the PCS cell.
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
nice -n 10 python $S grid --k 16384 --reps 3 --ps 128 --rhos 0.99 0.9 --bases kn --methods split oracle dc --tag p128 > $L/grid_k16384_p128.log 2>&1 &
nice -n 10 python $S pcs --reps 300 --n0s 10 --methods dc --tag dc300 > $L/pcs_dc300.log 2>&1 &
wait
