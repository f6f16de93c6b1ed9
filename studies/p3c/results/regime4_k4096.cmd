python studies/p3c/regime.py map --ks 4096 --reps 20 --methods p3c --out regime4_k4096 --stop-at 1796665500
