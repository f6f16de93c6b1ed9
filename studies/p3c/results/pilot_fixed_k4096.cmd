python studies/p3c/regime.py map --ks 4096 --ps 16 --rhos 0.9 0.95 --deltas 0.1 --reps 20 --methods p3c-pilot10 p3c-pilot14 --out pilot_fixed_k4096
