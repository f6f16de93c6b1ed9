#!/bin/bash
# Every command whose results are in studies/p3c/results/ (from each JSON's meta.command),
# in the order they were started (2026-11-26, 15:00-16:15 UTC, nice -n 10, 2-core machine under load).
# Run from the repository root; then: python studies/p3c/report.py
set -e
# -> cost.json (started 2026-11-26 15:00:36 UTC)
nice -n 10 python studies/p3c/run_study.py cost
# -> grid_k1024_first40reps_killed.json (started 2026-11-26 15:00:36 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 40
# -> grid_k1024_kn.json (started 2026-11-26 15:13:57 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 20 --bases kn --tag kn
# -> budget.json (started 2026-11-26 15:21:35 UTC)
nice -n 10 python studies/p3c/run_study.py budget --k 1024 --reps 50 --rhos 0.99 0.9 --cs 15 20 50 --efg_batch 8
# -> ari.json (started 2026-11-26 15:33:37 UTC)
nice -n 10 python studies/p3c/run_study.py ari --reps 10
# -> big_k1000000.json (started 2026-11-26 15:33:37 UTC)
nice -n 10 python studies/p3c/run_study.py big --methods split dc --kt_g 500
# -> pcs_n0_10.json (started 2026-11-26 15:34:56 UTC)
nice -n 10 python studies/p3c/run_study.py pcs --reps 1000 --other_reps 300 --n0s 10 --methods split reuse dc --tag n0_10
# -> grid_k1024_pilot10.json (started 2026-11-26 15:41:45 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 10 --bases kn --ps 4 8 16 32 --rhos 0.9 0.99 --methods split --pilot 10 --tag pilot10
# -> grid_k16384.json (started 2026-11-26 15:48:21 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 16384 --reps 4 --ps 2 8 32 --rhos 0.9 --bases kn --methods split oracle dc
# -> grid_k1024_kt.json (started 2026-11-26 15:55:24 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 5 --bases kt --ps 4 16 --rhos 0.9 --methods split oracle dc --kt_g 32 --tag kt
# -> grid_k1024_random.json (started 2026-11-26 15:56:43 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 10 --bases kn --ps 4 16 --rhos 0.9 --means random --tag random
# -> grid_k16384_rho099.json (started 2026-11-26 15:59:16 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 16384 --reps 4 --ps 2 8 32 --rhos 0.99 --bases kn --methods split oracle dc --tag rho099
# -> grid_k16384_pilot10.json (started 2026-11-26 15:59:27 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 16384 --reps 4 --ps 8 32 --rhos 0.9 0.99 --bases kn --methods split --pilot 10 --tag pilot10
# -> grid_k1024_pilot10_rho05.json (started 2026-11-26 16:00:53 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 10 --bases kn --ps 4 16 32 --rhos 0.5 --methods split --pilot 10 --tag pilot10_rho05
# -> grid_k1024_kt10.json (started 2026-11-26 16:01:12 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 1024 --reps 10 --bases kt --ps 2 4 8 16 32 --rhos 0.9 0.99 --methods split reuse oracle dc --kt_g 32 --tag kt10
# -> rho0.json (started 2026-11-26 16:04:59 UTC)
nice -n 10 python studies/p3c/run_study.py rho0 --reps 10 --bases kn --ps 4 16
# -> cost_tol.json (started 2026-11-26 16:06:21 UTC)
nice -n 10 python studies/p3c/run_study.py cost --ks 10000 100000 1000000 --n_init 1 --tag tol
# -> rho0_p16_40reps.json (started 2026-11-26 16:07:46 UTC)
nice -n 10 python studies/p3c/run_study.py rho0 --reps 40 --bases kn --ps 16 --tag p16_40reps
# -> grid_k16384_p128.json (started 2026-11-26 16:13:17 UTC)
nice -n 10 python studies/p3c/run_study.py grid --k 16384 --reps 3 --ps 128 --rhos 0.99 0.9 --bases kn --methods split oracle dc --tag p128
# -> pcs_dc300.json (started 2026-11-26 16:13:17 UTC)
nice -n 10 python studies/p3c/run_study.py pcs --reps 300 --n0s 10 --methods dc --tag dc300
# -> pcs_dc1000.json (started 2026-11-26 16:45 UTC, 119 s): DC at the hardest setting with 1000 macroreps
nice -n 5 python studies/p3c/run_study.py pcs --reps 1000 --n0s 10 --methods dc --tag dc1000

# issue 16 review (regime.py, resumable JSON lines; the chains that ran: run_chain_g.sh, run_chain_h.sh)
nice -n 19 python studies/p3c/regime.py budget --reps 50 --out budget_ocba
studies/p3c/run_chain_g.sh "$(date -d '14:25' +%s)"
studies/p3c/run_chain_h.sh "$(date -d '14:25' +%s)"
python studies/p3c/regime_report.py

# issue 16, head start (P3C head_start=True, default): goal cells, validity cells, full maps, rho = 0
studies/p3c/run_chain_i.sh "$(date -d '17:45' +%s)"
studies/p3c/run_chain_j.sh "$(date -d '17:45' +%s)"
python studies/p3c/regime_report.py

# issue 16, KN's boundary parameter (P3C kn_c="auto", default): maps as shipped and with c = 2 forced,
# validity with the default and c = 2, rho = 0, DC with c = 2 at the goal cells, the cost floor
studies/p3c/run_chain_k.sh a & studies/p3c/run_chain_k.sh b & studies/p3c/run_chain_k.sh c
python studies/p3c/regime_report.py
nice python studies/p3c/regime.py map --ks 4096 --ps 16 --rhos 0.9 0.95 --deltas 0.1 --reps 20 --methods p3c-pilot10 p3c-pilot14 --out pilot_fixed_k4096
