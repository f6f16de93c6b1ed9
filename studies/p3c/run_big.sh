#!/bin/bash
# k = 10^6 end to end (15:36 UTC): P3C (split) first; KT groups of g = 500 inside the 62,500-system clusters.
cd "$(dirname "$0")/../.."
nice -n 10 python studies/p3c/run_study.py big --methods split dc --kt_g 500 > studies/p3c/logs/big.log 2>&1
