python studies/p3c/regime.py map --ks 4096 --reps 20 --methods p3c --out regime5_k4096
