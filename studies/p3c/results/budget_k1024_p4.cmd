python studies/p3c/regime.py budget --k 1024 --p 4 --cs 15 50 --reps 30 --out budget_k1024_p4 --stop-at 1796665500
