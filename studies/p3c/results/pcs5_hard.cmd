python studies/p3c/regime.py pcs --k 256 --p 64 --rho 0.3 --pilot 3 --reps 1000 --out pcs5_hard
