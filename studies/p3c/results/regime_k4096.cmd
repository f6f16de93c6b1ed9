python studies/p3c/regime.py map --ks 4096 --reps 20 --out regime_k4096 --stop-at 1796258760
