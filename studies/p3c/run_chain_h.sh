#!/bin/bash
# Issue 16 review, after chain g: DC at rho = 0 with the first stage P3C's n0_auto picked there
# (60 at delta 0.1, 40 at 0.2, 20 at 0.5; k = 1024), for the rho = 0 check at an equal first stage.
set -u
cd "$(dirname "$0")/../.."
S=${1:-99999999999}
R="nice -n 19 python studies/p3c/regime.py"
$R map --ks 1024 --rhos 0 --ps 4 16 --deltas 0.5 --reps 20 --methods dc20 --out rho0_dcn0_k1024 --stop-at $S
$R map --ks 1024 --rhos 0 --ps 4 16 --deltas 0.2 --reps 20 --methods dc40 --out rho0_dcn0_k1024 --stop-at $S
$R map --ks 1024 --rhos 0 --ps 4 16 --deltas 0.1 --reps 20 --methods dc60 --out rho0_dcn0_k1024 --stop-at $S
echo chain h done
