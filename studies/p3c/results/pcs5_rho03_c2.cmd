python studies/p3c/regime.py pcs --k 256 --p 16 --rho 0.3 --reps 1000 --kn-c 2 --out pcs5_rho03_c2
