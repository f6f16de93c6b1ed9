#!/bin/bash
# Issue 16, head start (P3C's within KN starts from the pilot's sums; head_start=True):
# the goal cells at k = 1024, the validity cells, the goal cells at k = 4096 (same seeds as
# regime3_*; DC rows reused from regime_k*). Every part resumable; stops at $1 (unix time).
set -u
cd "$(dirname "$0")/../.."
S=${1:-99999999999}
R="nice -n 10 python studies/p3c/regime.py"
G="--rhos 0.9 0.95 0.99 --ps 4 8 16 --deltas 0.1 --reps 20 --methods p3c"
$R map --ks 1024 $G --out regime4_k1024 --stop-at $S
$R pcs --k 256 --p 64 --rho 0.3 --pilot 3 --reps 1000 --out pcs4_hard --stop-at $S
$R pcs --k 256 --p 16 --rho 0.3 --reps 1000 --out pcs4_rho03 --stop-at $S
$R map --ks 4096 $G --out regime4_k4096 --stop-at $S
echo chain done
