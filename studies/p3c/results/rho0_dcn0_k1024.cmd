python studies/p3c/regime.py map --ks 1024 --rhos 0 --ps 4 16 --deltas 0.1 --reps 20 --methods dc60 --out rho0_dcn0_k1024 --stop-at 1796653500
