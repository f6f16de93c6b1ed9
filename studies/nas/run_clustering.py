"""Which structure does P3C's correlation clustering find on the mini NAS benchmark?

    nice -n 10 python studies/nas/run_clustering.py --out studies/nas/results/clustering.json

For each of --reps seeds, P3C (screening-free, n0 = --pilot CRN pilot samples per
architecture, --clusters clusters) is run through ``rands.select`` and its partition
(``extras['labels']``: pilot + spherical k-means, exactly the P3C pipeline) is
compared with the architectures' operations:
- mean number of shared edge operations for pairs within a cluster vs across
  clusters (random-partition baseline = the mean over all pairs);
- adjusted Rand index (ARI) against structural groupings (number of 'none' edges,
  3x3 conv on an input->output path / degenerate cell, number of 3x3 convs) and
  against accuracy quintiles of the true means;
- ARI against the clustering of the full table (all recorded seeds as the CRN vector)
  and between repeated pilots (stability).
Per-cluster operation frequencies of the first pilot that used every cluster go to the table and plot.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import rands
from rands.applications.nas.analysis import (arch_ops_codes, crn_pilot, label_permutation_test, op_frequencies, shared_ops_within_across,
                                             structural_groupings)
from rands.applications.nas.space import OPS
from rands.clustering import adjusted_rand_index, mean_within_correlation, spherical_kmeans, standardize

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_selection import load_problem  # noqa: E402


def describe(labels: np.ndarray, codes: np.ndarray, groupings: dict, mu: np.ndarray) -> dict:
    sh = shared_ops_within_across(codes, labels)
    return {"shared_ops": sh,
            "ari": {g: adjusted_rand_index(v, labels) for g, v in groupings.items()},
            "n_clusters_used": int(np.unique(labels).size)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source")
    ap.add_argument("--n-seeds", type=int)
    ap.add_argument("--out", default=str(HERE / "results" / "clustering.json"))
    ap.add_argument("--pilot", type=int, default=5)
    ap.add_argument("--clusters", type=int, default=16)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--perms", type=int, default=100, help="label permutations per pilot (null)")
    args = ap.parse_args(argv)

    prob, info = load_problem(args.source, args.n_seeds)
    k = prob.k
    mu = np.asarray(prob.true_means)
    codes = arch_ops_codes(prob.archs)
    groupings = structural_groupings(codes)
    groupings["acc_quintile"] = np.searchsorted(np.quantile(mu, [0.2, 0.4, 0.6, 0.8]), mu, side="right")
    # clustering of the full table: every recorded seed is one CRN coordinate
    full = spherical_kmeans(standardize(prob.table), min(args.clusters, k), seed=(args.seed, 1), n_init=5)
    xs_full = standardize(prob.table)
    full_rho = mean_within_correlation(xs_full, full.labels, min(args.clusters, k))
    # mean pairwise seed-to-seed correlation over all pairs of architectures (one cluster)
    rho_all = float(mean_within_correlation(xs_full, np.zeros(k, dtype=np.int64), 1)[0])
    rho_within_full = float(np.nansum(full_rho * full.sizes * (full.sizes - 1)) /
                            np.sum(full.sizes * (full.sizes - 1)))
    reps = []
    first, first_rep = None, None
    labels_all = []
    for r in range(args.reps):
        res = rands.select(prob, "p3c", seed=(args.seed, r), budget=int(args.pilot * k + 4 * k),
                           n0=args.pilot, n_clusters=args.clusters)
        lab = np.asarray(res.extras["labels"], dtype=np.int64)
        tr = next(t for t in res.trace if t.get("stage") == "cluster")
        d = describe(lab, codes, groupings, mu)
        d["ari"]["full_table_clustering"] = adjusted_rand_index(full.labels, lab)
        perm = {"shared_within": label_permutation_test(
            lab, lambda l: shared_ops_within_across(codes, l)["within"], n_perm=args.perms, seed=(args.seed, r, 1))}
        for g in ("n_conv3", "conv3_path", "n_none"):
            perm[f"ari_{g}"] = label_permutation_test(
                lab, lambda l, g=g: adjusted_rand_index(groupings[g], l), n_perm=args.perms, seed=(args.seed, r, 2))
        d["permutation"] = perm
        d["mean_within_corr"] = tr.get("mean_within_corr")
        d["sizes"] = tr.get("sizes")
        reps.append(d)
        labels_all.append(lab)
        if first is None and d["n_clusters_used"] == min(args.clusters, k):
            first, first_rep = lab, r       # table/plot: the first pilot that used every cluster
    stab = [adjusted_rand_index(labels_all[i], labels_all[j])
            for i in range(len(labels_all)) for j in range(i + 1, len(labels_all))]

    def agg(get):
        v = np.array([get(d) for d in reps], dtype=np.float64)
        return {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v, ddof=1)) if v.size > 1 else 0.0}

    summary = {
        "shared_within": agg(lambda d: d["shared_ops"]["within"]),
        "shared_across": agg(lambda d: d["shared_ops"]["across"]),
        "shared_all_pairs": float(reps[0]["shared_ops"]["all_pairs"]),
        "ari": {g: agg(lambda d, g=g: d["ari"][g]) for g in reps[0]["ari"]},
        "table_corr_all_pairs": rho_all,
        "table_corr_within_full_clusters": rho_within_full,
        "pilot_corr_within_clusters": agg(lambda d: np.average(np.nan_to_num(d["mean_within_corr"]),
                                                               weights=np.asarray(d["sizes"], float) *
                                                               (np.asarray(d["sizes"], float) - 1) + 1e-12)),
        "permutation": {t: {"z_mean": agg(lambda d, t=t: (d["permutation"][t]["observed"] -
                                                          d["permutation"][t]["null_mean"]) /
                                          max(d["permutation"][t]["null_sd"], 1e-12))["mean"],
                            "frac_p_below_0.05": float(np.mean([d["permutation"][t]["p_value"] < 0.05
                                                               for d in reps]))}
                        for t in reps[0]["permutation"]},
        "stability_ari": {"mean": float(np.mean(stab)), "sd": float(np.std(stab, ddof=1))} if len(stab) > 1
        else None,
    }
    # per-cluster table of the first repetition that used every cluster, by mean accuracy
    if first is None:
        first, first_rep = labels_all[0], 0
    m = int(first.max()) + 1
    freq = op_frequencies(codes, first)
    cl = []
    uniq = np.unique(first)
    for j, c in enumerate(uniq):
        mem = first == c
        cl.append({"cluster": int(c), "size": int(mem.sum()), "mean_acc": float(mu[mem].mean()),
                   "max_acc": float(mu[mem].max()), "degenerate_frac": float(groupings["degenerate"][mem].mean()),
                   "conv3_path_frac": float((groupings["conv3_path"][mem] == 2).mean()),
                   "mean_n_none": float(groupings["n_none"][mem].mean()),
                   "op_freq": {op: float(freq[j, o]) for o, op in enumerate(OPS)},
                   "has_best": bool(mem[int(np.argmax(mu))])})
    cl.sort(key=lambda x: -x["mean_acc"])
    full_desc = describe(full.labels, codes, groupings, mu)
    out = {"benchmark": info, "k": k, "pilot": args.pilot, "clusters": args.clusters, "reps": args.reps,
           "seed": args.seed, "summary": summary, "per_cluster_first_rep": cl, "per_cluster_rep": first_rep,
           "full_table_clustering": {**full_desc, "mean_within_corr": np.nan_to_num(full_rho).tolist(),
                                     "sizes": full.sizes.tolist()},
           "n_zero_variance_pilot_first_rep": int(np.sum(crn_pilot(prob, args.pilot, (args.seed, first_rep))
                                                        .var(axis=1) == 0)),
           "distinct_seeds_in_pilot": [int(np.unique(crn_pilot(prob, args.pilot, (args.seed, r)).T, axis=0).shape[0])
                                       for r in range(args.reps)], "per_rep": reps,
           "command": "python studies/nas/run_clustering.py " + " ".join(sys.argv[1:])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(json.dumps(summary, indent=1))
    for c in cl:
        print(f"size {c['size']:3d} acc {c['mean_acc']:5.1f} degen {c['degenerate_frac']:.2f} "
              f"conv3path {c['conv3_path_frac']:.2f} none {c['mean_n_none']:.1f} " +
              " ".join(f"{op[:6]}={v:.2f}" for op, v in c["op_freq"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
