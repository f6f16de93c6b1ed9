#!/bin/bash
# Chain D (16:00 UTC, CPU freed up): more cells for k = 16384 (rho = 0.99) and the KT base at k = 1024.
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
nice -n 10 python $S grid --k 16384 --reps 4 --ps 2 8 32 --rhos 0.99 --bases kn --methods split oracle dc --tag rho099 > $L/grid_k16384_rho099.log 2>&1
nice -n 10 python $S grid --k 1024 --reps 10 --bases kt --ps 2 4 8 16 32 --rhos 0.9 0.99 --methods split reuse oracle dc --kt_g 32 --tag kt10 > $L/grid_k1024_kt10.log 2>&1
