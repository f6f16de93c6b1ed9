"""KT on the flow line with a given number of partitions (the algorithm's p): python studies/parallel/kt_groups_check.py P L."""
import rands, time, numpy as np, sys
ng = int(sys.argv[1]); L = int(sys.argv[2])
p = rands.problems.make("flowline", L=L)
t = time.time()
r = rands.select(p, "kt", seed=0, alpha=0.05, delta=0.1, g=20, n0=20, crn=True, n_groups=ng)
n = r.sample_sizes
print(L, ng, r.best_label, r.total_samples, r.total_samples / p.k, "max n", n.max(), "p99", np.percentile(n, 99), "time", time.time() - t, flush=True)
for e in r.trace[-6:]: print(e)
