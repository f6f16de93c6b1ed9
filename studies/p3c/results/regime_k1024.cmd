python studies/p3c/regime.py map --ks 1024 --reps 20 --out regime_k1024 --stop-at 1796258760
