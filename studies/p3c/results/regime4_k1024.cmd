python studies/p3c/regime.py map --ks 1024 --reps 20 --methods p3c --out regime4_k1024 --stop-at 1796665500
