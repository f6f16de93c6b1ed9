#!/usr/bin/env bash
# Reproduce the NAS study (from the repository root):
#   bash studies/nas/run_all.sh                                   # full mini benchmark, 10 seeds -> results_10seeds/
#   NSEEDS=6 R=studies/nas/results EXTRA_KT=1 bash studies/nas/run_all.sh   # first 6 seeds -> results/
# (the 6-seed study read the same numbers from the build's partial JSONL while the build ran).
# How the runs are split over files does not change any number (validate's seeds are per config).
set -euo pipefail
SOURCE=${SOURCE:-applications/nas/data/mini_digits.json}
NSEEDS=${NSEEDS:-}
R=${R:-studies/nas/results_10seeds}
mkdir -p $R studies/nas/logs
NS=${NSEEDS:+--n-seeds $NSEEDS}
S="nice -n 10 python studies/nas/run_selection.py --source $SOURCE $NS"
# processes: fixed-budget procedures (c = 10..80, and c = 6 added later); KN and P3C-KN; DC-KN; KT (the slowest) as 2 x 100
# macroreplications with independent seeds (pooled by make_report.py)
$S --macroreps 200 --only equal OCBA EFG EFG+ FBKT P3C-sf DC-sf --out $R/selection_fb.json > studies/nas/logs/sel_fb.log 2>&1 &
$S --macroreps 200 --c 6 --only equal OCBA EFG EFG+ FBKT P3C-sf DC-sf --out $R/selection_fb6.json > studies/nas/logs/sel_fb6.log 2>&1 &
$S --macroreps 200 --only KN P3C-KN --out $R/selection_fp.json > studies/nas/logs/sel_fp.log 2>&1 &
$S --macroreps 200 --only DC-KN --out $R/selection_fp_dc.json > studies/nas/logs/sel_fp_dc.log 2>&1 &
$S --macroreps 100 --only KT --seed 2026 --out $R/selection_kt_a.json > studies/nas/logs/sel_kt_a.log 2>&1 &
$S --macroreps 100 --only KT --seed 2027 --out $R/selection_kt_b.json > studies/nas/logs/sel_kt_b.log 2>&1 &
# 6-seed study only: extra KT macroreplications, chunks of 10 with their own seeds
# (3000-3009, 4000-4009), pooled too
[ -n "${EXTRA_KT:-}" ] && for L in c d; do B=$([ $L = c ] && echo 3000 || echo 4000)
  (for i in $(seq 0 9); do $S --macroreps 10 --only KT --seed $((B + i)) \
      --out $R/selection_kt_${L}$(printf %02d $i).json > /dev/null 2>&1; done) &
done
nice -n 10 python studies/nas/run_clustering.py --source $SOURCE $NS --reps 20 --perms 100 \
    --out $R/clustering.json > studies/nas/logs/clustering.log 2>&1
wait
[ -f studies/nas/results/live_wallclock.json ] || \
    nice -n 10 python studies/nas/run_live.py --repeats 2 > studies/nas/logs/live.log 2>&1
python studies/nas/make_report.py "$R"
