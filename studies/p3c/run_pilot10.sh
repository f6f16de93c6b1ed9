#!/bin/bash
# Split design with a 10-sample pilot (instead of the default n0 // 2 = 5), 15:43 UTC.
cd "$(dirname "$0")/../.."
nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 10 --bases kn --ps 4 8 16 32 --rhos 0.9 0.99 --methods split --pilot 10 --tag pilot10 > studies/p3c/logs/grid_pilot10.log 2>&1
