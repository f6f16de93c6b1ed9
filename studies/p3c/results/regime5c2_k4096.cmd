python studies/p3c/regime.py map --ks 4096 --reps 20 --methods p3c-c2 --out regime5c2_k4096
