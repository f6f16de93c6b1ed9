python studies/p3c/regime.py map --ks 1024 --rhos 0.9 0.95 0.99 --ps 4 8 16 --deltas 0.1 --reps 20 --methods dc30 --out dc30_k1024 --stop-at 1796653500
