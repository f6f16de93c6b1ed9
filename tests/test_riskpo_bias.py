"""RiskPO's quantile bias measured exactly: the expected update of the estimator used in training vs the
true MVaR gradient on a 4-outcome softmax policy (every composition of the draws enumerated)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rands.applications.riskpo import advantages as adv  # noqa: E402
from rands.applications.riskpo import bias as B  # noqa: E402

V = np.array([0.0, 1.0, 2.0, 4.0])
THETA = np.log([0.3, 0.25, 0.3, 0.15])  # CDF 0.3, 0.55, 0.85: no level (0.2, 0.8) on an atom boundary


def _estimator_mean(est, n, **call):
    """E[(1/n) sum_j A_j grad log p(a_j)] with the real estimator, one question per composition of n draws."""
    p = B.softmax(THETA)
    C = B.compositions(n, 4)
    from scipy.stats import multinomial
    pmf = multinomial(n, p).pmf(C)
    draws = np.stack([np.repeat(np.arange(4), c) for c in C])  # (n_comp, n) outcome indices
    q = np.repeat(np.arange(len(C)), n)
    A = est(V[draws].reshape(-1), q, bundle_ids=q, **call).advantages.numpy().reshape(len(C), n)
    onehot = np.eye(4)[draws]  # (n_comp, n, 4)
    upd = ((A[..., None] * (onehot - p)).mean(1))
    return pmf @ upd


def test_exact_gradient_equals_finite_differences():
    np.testing.assert_allclose(B.exact_gradient(V, THETA), B.finite_difference_gradient(V, THETA), atol=1e-7)


@pytest.mark.parametrize("n", [5, 8])
def test_counts_formula_is_the_training_estimator(n):
    est = adv.RiskPO(bundle_size=1, quantiles="bundle", credit="uniform", scale="none")
    np.testing.assert_allclose(B.expected_update(V, THETA, n), _estimator_mean(est, n), atol=1e-12)


def test_quantiles_at_their_true_values_are_unbiased():
    """The tracker at its fixed point (true quantiles) gives the exact gradient for any G."""
    est = adv.RiskPO(bundle_size=1, quantiles="tracked", credit="uniform", scale="none")
    est.tracker.q = np.array([B.exact_quantile_at(V, THETA, u) for u in est.tracker.levels])
    est.tracker.t = 1
    before = est.state_dict()
    m = _estimator_mean(est, 5, update=False)
    np.testing.assert_allclose(m, B.exact_gradient(V, THETA), atol=1e-12)
    assert est.state_dict() == before


def test_bundle_quantile_bias_by_group_size():
    """Released per-bundle quantiles (G = 5-8 scores): ~31-35% off the MVaR gradient; pooled over N >= 128: < 4%."""
    rows = {r["n"]: r for r in B.bias_table(V, THETA, [5, 8, 64, 128])}
    assert 0.25 < rows[5]["rel_error"] < 0.40 and 0.25 < rows[8]["rel_error"] < 0.40
    assert 0.05 < rows[64]["rel_error"] < 0.15
    assert rows[128]["rel_error"] < 0.04
    assert rows[5]["cosine"] > 0.95  # the direction is nearly right; the size and mix are not
