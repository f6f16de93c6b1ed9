#!/bin/bash
# Issue 16 review chain (n0_auto default): PCS validity cells, regime map with the new P3C,
# rho = 0 cells, DC with a larger first stage. Every part resumable; stops at $1 (unix time).
set -u
cd "$(dirname "$0")/../.."
S=${1:-99999999999}
R="nice -n 19 python studies/p3c/regime.py"
# first run (n0_auto, pilot_cap 0.1; killed after these, kept as the ablation):
#   pcs --k 256 --p 64 --rho 0.3 --pilot 3 --reps 1000 --out pcs2_hard   (pilot fixed: cap irrelevant)
#   pcs --k 256 --p 16 --rho 0.3 --reps 1000 --out pcs2_rho03
#   map --ks 1024 --reps 20 --methods p3c --out regime2_k1024
#   map --ks 1024 --rhos 0 --ps 4 16 --reps 20 --out rho0_k1024
# as shipped (n0_auto, pilot_cap 0.25):
$R map --ks 1024 --reps 20 --methods p3c --out regime3_k1024 --stop-at $S
$R pcs --k 256 --p 16 --rho 0.3 --reps 1000 --out pcs3_rho03 --stop-at $S
$R map --ks 1024 --rhos 0 --ps 4 16 --reps 20 --out rho0b_k1024 --stop-at $S
$R map --ks 4096 --reps 20 --methods p3c --out regime3_k4096 --stop-at $S
$R map --ks 1024 --rhos 0.9 0.95 0.99 --ps 4 8 16 --deltas 0.1 --reps 20 --methods dc30 --out dc30_k1024 --stop-at $S
$R map --ks 4096 --rhos 0 --ps 4 16 --reps 20 --out rho0b_k4096 --stop-at $S
$R pcs --k 256 --p 16 --rho 0.5 --reps 1000 --out pcs3_rho05 --stop-at $S
echo chain done
