#!/bin/bash
# Chain A2 (15:30 UTC, replaces chain A after its first grid; cells trimmed for the deadline).
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
# (waited here for the k = 1024 KN grid of the first chain to finish)
nice -n 10 python $S grid --k 16384 --reps 4 --ps 2 8 32 --rhos 0.9 --bases kn --methods split oracle dc > $L/grid_k16384.log 2>&1
nice -n 10 python $S grid --k 1024 --reps 5 --bases kt --ps 4 16 --rhos 0.9 --methods split oracle dc --kt_g 32 --tag kt > $L/grid_k1024_kt.log 2>&1
nice -n 10 python $S grid --k 1024 --reps 10 --bases kn --ps 4 16 --rhos 0.9 --means random --tag random > $L/grid_k1024_random.log 2>&1
