python studies/p3c/regime.py budget --reps 50 --out budget_ocba --stop-at 1796652300
