#!/bin/bash
# Issue 16, KN's boundary parameter c (kn_c="auto", the new default): the regime map with the
# default (regime5_*; kn_c = 1 is regime4_* bit for bit), the same map with c = 2 forced
# (regime5c2_*, the calibration of the eligibility rule), validity at 1000 macroreps with the
# default and with c = 2 forced, rho = 0 cells, and the within-cluster cost floor.
# Three parts run side by side: bash run_chain_k.sh a|b|c. Resumable.
set -u
cd "$(dirname "$0")/../.."
R="nice -n 10 python studies/p3c/regime.py"
if [ "${1:-a}" = a ]; then
  $R map --ks 1024 --reps 20 --methods p3c --out regime5_k1024
  $R map --ks 4096 --reps 20 --methods p3c --out regime5_k4096
  $R pcs --k 256 --p 64 --rho 0.3 --pilot 3 --reps 1000 --out pcs5_hard
  $R pcs --k 256 --p 16 --rho 0.3 --reps 1000 --out pcs5_rho03
  $R map --ks 1024 4096 --rhos 0 --ps 4 16 --reps 20 --methods p3c --out rho0d
elif [ "${1:-a}" = c ]; then   # DC with c = 2 at the goal cells (does DC gain from c too?)
  $R map --ks 1024 4096 --rhos 0.9 0.95 0.99 --ps 4 8 16 --deltas 0.1 --reps 20 --methods dc-c2 --out dcc2_goal
else
  $R map --ks 1024 --reps 20 --methods p3c-c2 --out regime5c2_k1024
  $R map --ks 4096 --reps 20 --methods p3c-c2 --out regime5c2_k4096
  $R pcs --k 256 --p 64 --rho 0.3 --pilot 3 --reps 1000 --kn-c 2 --out pcs5_hard_c2
  $R pcs --k 256 --p 16 --rho 0.3 --reps 1000 --kn-c 2 --out pcs5_rho03_c2
  nice -n 10 python studies/p3c/kn_floor.py --reps 10 --out kn_floor
fi
echo "chain ${1:-a} done"
