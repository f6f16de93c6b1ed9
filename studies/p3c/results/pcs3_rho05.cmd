python studies/p3c/regime.py pcs --k 256 --p 16 --rho 0.5 --reps 1000 --out pcs3_rho05 --stop-at 1796653500
