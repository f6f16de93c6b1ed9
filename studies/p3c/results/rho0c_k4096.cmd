python studies/p3c/regime.py map --ks 4096 --rhos 0 --ps 4 16 --reps 20 --out rho0c_k4096 --stop-at 1796665200
