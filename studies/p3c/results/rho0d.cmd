python studies/p3c/regime.py map --ks 1024 4096 --rhos 0 --ps 4 16 --reps 20 --methods p3c --out rho0d
