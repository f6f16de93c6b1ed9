python studies/p3c/regime.py pcs --k 256 --p 16 --rho 0.3 --pilot 20 --reps 1000 --out pcs4_head20 --stop-at 1796665500
