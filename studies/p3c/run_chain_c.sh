#!/bin/bash
# Chain C (restarted 15:21 UTC, c=10 left no budget after n0=10): fixed budget. EFG run with batch=8 greedy steps to fit the time.
cd "$(dirname "$0")/../.."
S=studies/p3c/run_study.py
L=studies/p3c/logs
nice -n 10 python $S budget --k 1024 --reps 50 --rhos 0.99 0.9 --cs 15 20 50 --efg_batch 8 > $L/budget.log 2>&1
