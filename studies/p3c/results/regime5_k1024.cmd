python studies/p3c/regime.py map --ks 1024 --reps 20 --methods p3c --out regime5_k1024
