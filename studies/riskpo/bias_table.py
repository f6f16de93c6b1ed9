"""Exact bias of RiskPO's sample-quantile weights vs the true MVaR gradient, by quantile sample size n.

n = G for the released per-bundle quantiles (quantiles="bundle"); n = all bundle scores of the batch for
pooled quantiles (quantiles="batch"); the tracker at its fixed point is unbiased (tests/test_riskpo_bias.py).
Also: distance to the gradient of E[MVaR of the empirical distribution of n scores], the objective
per-bundle quantiles roughly follow. Run: python studies/riskpo/bias_table.py (seconds, exact enumeration).
"""
import json
from pathlib import Path

import numpy as np
import torch
from scipy.special import gammaln

from rands.applications.riskpo import bias as B
from rands.applications.riskpo.mvar import empirical_mvar, released_terms

V = np.array([0.0, 1.0, 2.0, 4.0])
THETA = np.log([0.3, 0.25, 0.3, 0.15])
NS = [2, 4, 5, 8, 16, 32, 64, 128]


def grad_expected_empirical_mvar(n, h=1e-6):
    C = B.compositions(n, 4)
    em = empirical_mvar(torch.as_tensor(np.stack([np.repeat(V, c) for c in C])), released_terms()).numpy()

    def E(t):
        return np.exp(gammaln(n + 1) - gammaln(C + 1).sum(1) + (C * np.log(B.softmax(t))).sum(1)) @ em
    return np.array([(E(THETA + h * e) - E(THETA - h * e)) / (2 * h) for e in np.eye(4)])


def main():
    rows = B.bias_table(V, THETA, NS)
    for r in rows:
        if r["n"] <= 64:
            gE = grad_expected_empirical_mvar(r["n"])
            m = B.expected_update(V, THETA, r["n"])
            r["rel_error_vs_grad_E_empirical_mvar"] = float(np.linalg.norm(m - gE) / np.linalg.norm(gE))
    out = {"values": V.tolist(), "probs": B.softmax(THETA).tolist(), "terms": "released (alpha=0.2, beta=0.8, w=1.5)",
           "exact_gradient": B.exact_gradient(V, THETA).tolist(), "rows": rows,
           "command": "python studies/riskpo/bias_table.py"}
    here = Path(__file__).parent
    (here / "bias_table.json").write_text(json.dumps(out, indent=1))
    lines = ["| n (quantile sample) | rel. error vs grad MVaR | cosine | norm ratio | rel. error vs grad E[MVaR_n] |",
             "|---|---|---|---|---|"]
    for r in rows:
        e = r.get("rel_error_vs_grad_E_empirical_mvar")
        lines.append(f"| {r['n']} | {r['rel_error']:.3f} | {r['cosine']:.4f} | {r['norm_ratio']:.3f} | "
                     f"{'' if e is None else f'{e:.3f}'} |")
    (here / "bias_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
