#!/bin/bash
# Issue 16, head start, second chain (after run_chain_i.sh): the rest of the regime map with
# the head start (goal cells already in regime4_* are skipped), rho = 0 cells (DC rows from
# rho0b_k1024, same seeds), and a validity cell where the head start carries most of the
# evidence (pilot fixed at 20, weak clusters). Resumable; stops at $1 (unix time).
set -u
cd "$(dirname "$0")/../.."
S=${1:-99999999999}
R="nice -n 10 python studies/p3c/regime.py"
$R pcs --k 256 --p 16 --rho 0.3 --pilot 20 --reps 1000 --out pcs4_head20 --stop-at $S
$R map --ks 1024 --reps 20 --methods p3c --out regime4_k1024 --stop-at $S
$R map --ks 1024 --rhos 0 --ps 4 16 --reps 20 --methods p3c --out rho0c_k1024 --stop-at $S
$R map --ks 4096 --reps 20 --methods p3c --out regime4_k4096 --stop-at $S
echo chain done
