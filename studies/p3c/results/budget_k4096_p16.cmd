python studies/p3c/regime.py budget --k 4096 --p 16 --cs 15 50 --reps 30 --out budget_k4096_p16 --stop-at 1796665500
