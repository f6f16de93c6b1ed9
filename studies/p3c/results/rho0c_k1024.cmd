python studies/p3c/regime.py map --ks 1024 --rhos 0 --ps 4 16 --reps 20 --methods p3c --out rho0c_k1024 --stop-at 1796665500
