python studies/p3c/regime.py map --ks 1024 4096 --rhos 0.9 0.95 0.99 --ps 4 8 16 --deltas 0.1 --reps 20 --methods dc-c2 --out dcc2_goal
