"""RiskPO core: MVaR gradients, golden advantages, quantile tracking, pass@k, estimators, loss."""
import itertools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from rands.applications.riskpo import advantages as adv  # noqa: E402
from rands.applications.riskpo import mvar  # noqa: E402
from rands.applications.riskpo.losses import ppo_clip_loss  # noqa: E402
from rands.applications.riskpo.metrics import pass_at_k  # noqa: E402
from rands.errors import ParameterError  # noqa: E402

GOLDEN_X = [0, 1, 2, 2, 4]
GOLDEN_A = [-2.34, -0.63, -0.18, -0.18, 0.0]


def _bundle_batch(scores, B=5):
    """Rewards (B questions x G responses) whose j-th bundle realisation scores scores[j]."""
    G = len(scores)
    r = np.zeros((B, G))
    for j, x in enumerate(scores):
        r[:x, j] = 1.0
    return r.reshape(-1), np.repeat(np.arange(B), G)


# ---------------------------------------------------------------- MVaR gradient
VALUES = np.array([0.0, 1.0, 2.0, 3.5, 5.0])
THETA = np.array([0.3, -0.2, 0.5, 0.1, -0.4])  # cumulative probs avoid the levels 0.2 and 0.8


def _probs(theta):
    e = np.exp(theta - theta.max())
    return e / e.sum()


def _fd_grad(terms, eps=1e-6):
    g = np.zeros_like(THETA)
    for i in range(len(THETA)):
        d = np.zeros_like(THETA)
        d[i] = eps
        g[i] = (mvar.exact_mvar(VALUES, _probs(THETA + d), terms)
                - mvar.exact_mvar(VALUES, _probs(THETA - d), terms)) / (2 * eps)
    return g


@pytest.mark.parametrize("natural", [True, False])
def test_mvar_score_function_exact_expectation_equals_finite_differences(natural):
    terms = mvar.released_terms(0.2, 0.8, 1.5)
    p = _probs(THETA)
    cdf = np.cumsum(p)
    assert np.all(np.abs(cdf - 0.2) > 0.02) and np.all(np.abs(cdf - 0.8) > 0.02)
    q = {u: torch.tensor(mvar.exact_quantile(VALUES, p, u), dtype=torch.float64) for u in (0.2, 0.8)}
    g, _ = mvar.mvar_weights(torch.tensor(VALUES), q, terms, natural_baseline=natural)
    # E[g(X) grad log p(X)] with grad_theta log p_k = e_k - p
    score = np.eye(len(p)) - p[None, :]
    exact = (p[:, None] * g.numpy()[:, None] * score).sum(0)
    np.testing.assert_allclose(exact, _fd_grad(terms), atol=1e-6)


def test_mvar_score_function_monte_carlo_matches_finite_differences():
    """Sampled bundle scores, batch-estimated quantiles, autograd through log-softmax (as in training)."""
    terms = mvar.released_terms(0.2, 0.8, 1.5)
    fd = _fd_grad(terms)
    theta = torch.tensor(THETA, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    n = 40000
    idx = torch.multinomial(torch.softmax(theta.detach(), 0), n, replacement=True, generator=gen)
    x = torch.tensor(VALUES)[idx]
    q = mvar.linear_quantiles(x, [0.2, 0.8], dim=0)
    g, _ = mvar.mvar_weights(x, q, terms)
    logp = torch.log_softmax(theta, 0)[idx]
    (g * logp).mean().backward()
    est = theta.grad.numpy()
    per = (g[:, None] * (torch.eye(5, dtype=torch.float64)[idx] - torch.softmax(theta.detach(), 0))).numpy()
    se = per.std(0) / np.sqrt(n)
    assert np.all(np.abs(est - fd) < 4 * se + 1e-3), (est, fd, se)
    assert np.linalg.norm(fd) > 0.3  # the check is not vacuous


def test_exact_rvar_closed_forms():
    v, p = np.array([0.0, 1.0]), np.array([0.3, 0.7])
    assert mvar.exact_rvar(v, p, 0.0, 0.2) == pytest.approx(0.0)
    assert mvar.exact_rvar(v, p, 0.0, 0.5) == pytest.approx(0.4)  # (0*0.3 + 1*0.2)/0.5
    assert mvar.exact_rvar(v, p, 0.0, 1.0) == pytest.approx(0.7)  # mean
    # empirical MVaR of the golden bundle scores (points at 0.2-quantile bins)
    assert float(mvar.empirical_mvar(torch.tensor([0., 1, 2, 2, 4]), [mvar.RiskTerm(0, 0.2, 1.0)])) == 0.0
    with pytest.raises(ParameterError, match="lo < hi"):
        mvar.RiskTerm(0.5, 0.2, 1.0)


# ---------------------------------------------------------------- golden example
def test_golden_bundle_example():
    X = torch.tensor(GOLDEN_X, dtype=torch.float64)
    q = mvar.linear_quantiles(X, [0.2, 0.8])
    assert float(q[0.2]) == pytest.approx(0.8) and float(q[0.8]) == pytest.approx(2.4)
    g, parts = mvar.mvar_weights(X, q, mvar.released_terms())
    np.testing.assert_allclose(parts["rvar_0.2_0.8"].numpy(), [-2.67, -2.33, -0.67, -0.67, 0], atol=0.005)
    np.testing.assert_allclose(parts["rvar_0_0.2"].numpy(), [-4, 0, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(g.numpy(), [-3.47, -0.93, -0.27, -0.27, 0], atol=0.005)
    assert float(X.std()) == pytest.approx(1.483, abs=1e-3)
    r, ids = _bundle_batch(GOLDEN_X)
    res = adv.RiskPO(credit="uniform")(r, ids, bundle_ids=np.zeros(25, int))
    A = res.advantages.numpy().reshape(5, 5)
    np.testing.assert_allclose(A, np.tile(GOLDEN_A, (5, 1)), atol=0.005)
    assert res.info["frac_pos"] == 0.0
    # default stable bundling of 5 question ids with B = 5 is the same single bundle
    np.testing.assert_allclose(adv.RiskPO(credit="uniform")(r, ids).advantages.numpy(), A.reshape(-1))


def test_golden_grpo_group():
    a = adv.GRPO()(np.array([0, 0, 0, 1, 1.0]), np.zeros(5, int)).advantages.numpy()
    np.testing.assert_allclose(a, [-0.73, -0.73, -0.73, 1.10, 1.10], atol=0.005)
    d = adv.DrGRPO()(np.array([0, 0, 0, 1, 1.0]), np.zeros(5, int)).advantages.numpy()
    np.testing.assert_allclose(d, [-0.4, -0.4, -0.4, 0.6, 0.6])


def test_riskpo_signs_credit_and_bundling_invariance():
    rng = np.random.default_rng(3)
    Q, G = 20, 8
    r = (rng.random((Q, G)) < rng.random((Q, 1))).astype(float)
    ids = np.repeat(rng.permutation(1000)[:Q], G)
    flat = r.reshape(-1)
    nat = adv.RiskPO()(flat, ids).advantages
    assert (nat <= 1e-12).all()  # natural baseline: never positive
    non = adv.RiskPO(natural_baseline=False, w=0.0)(flat, ids).advantages  # pure band term, lower baseline
    assert (non >= -1e-12).all()
    # batch order of questions does not change bundles or advantages (a permutation of whole
    # questions keeps the j-th response pairing)
    qperm = rng.permutation(Q)
    blocks = np.arange(Q * G).reshape(Q, G)[qperm].reshape(-1)
    again = adv.RiskPO()(flat[blocks], ids[blocks]).advantages.numpy()
    np.testing.assert_allclose(again, nat.numpy()[blocks])
    # sum-mean credit splits each bundle realisation's advantage over its questions
    est = adv.RiskPO(credit="sum-mean", bundle_size=5)
    a = est(flat, ids).advantages.numpy().reshape(Q, G)
    uni = adv.RiskPO(credit="uniform", bundle_size=5)(flat, ids).advantages.numpy().reshape(Q, G)
    uq = np.unique(ids)
    b = adv.stable_bundles(uq, 5)
    row_b = b[np.searchsorted(uq, ids[::G])]
    for k in range(4):
        rows = row_b == k
        np.testing.assert_allclose(a[rows].sum(0), uni[rows][0], atol=1e-9)
    # score credit: 0.5x correct, 1.5x incorrect
    sc = adv.RiskPO(credit="score")(flat, ids).advantages.numpy()
    np.testing.assert_allclose(sc, uni.reshape(-1) * np.where(flat > 0, 0.5, 1.5))
    with pytest.raises(ParameterError, match="quantiles"):
        adv.RiskPO(quantiles="global")


def test_bundles_depend_on_ids_not_order():
    ids = np.array([17, 3, 99, 42, 8, 1000, 5, 64, 23, 11])
    b1 = adv.stable_bundles(ids, 5)
    p = np.random.default_rng(0).permutation(10)
    b2 = adv.stable_bundles(ids[p], 5)
    m1 = {i: b for i, b in zip(ids, b1)}
    m2 = {i: b for i, b in zip(ids[p], b2)}
    assert m1 == m2 and np.bincount(b1).tolist() == [5, 5]


def test_other_estimators_formulas():
    r = np.array([0, 1, 1, 0, 0, 0, 0, 0.0])
    ids = np.repeat([0, 1], 4)
    rs = adv.RSGRPO(beta=2.0)(r, ids).advantages.numpy()
    e = np.exp(2 * r[:4])
    np.testing.assert_allclose(rs[:4], (e / e.mean() - 1) / 2)
    np.testing.assert_allclose(rs[4:], 0)
    nsr = adv.NSR(c=0.5)(r, ids).advantages.numpy()
    np.testing.assert_allclose(nsr[4:], -0.5)
    np.testing.assert_allclose(nsr[:4], adv.GRPO()(r[:4], ids[:4]).advantages.numpy())
    neg = adv.NSR(c=1.0, base="none")(r, ids).advantages.numpy()
    np.testing.assert_allclose(neg, np.where(r > 0, 0, -1.0))
    # unequal groups: per-question estimators use each question's own responses; RiskPO refuses or truncates
    ru = np.array([0, 1, 1, 3.0, 0, 2, 5.0])
    iu = np.array([0, 0, 0, 1, 1, 7, 0])  # question 0: rows 0,1,2,6; question 1: rows 3,4; question 7: row 5
    for est in (adv.GRPO(), adv.DrGRPO(), adv.RSGRPO(), adv.NSR()):
        au = est(ru, iu).advantages.numpy()
        np.testing.assert_allclose(au[[0, 1, 2, 6]], est(ru[[0, 1, 2, 6]], np.zeros(4, int)).advantages.numpy())
        np.testing.assert_allclose(au[[3, 4]], est(ru[[3, 4]], np.ones(2, int)).advantages.numpy())
        assert au[5] == 0.0  # a lone response has no group baseline
    with pytest.raises(ParameterError, match="unequal_groups='truncate'"):
        adv.RiskPO(bundle_size=2)(ru, iu)
    tr = adv.RiskPO(bundle_size=2, unequal_groups="truncate")(ru, iu)
    a_keep = adv.RiskPO(bundle_size=2)(ru[[0, 1, 3, 4]], iu[[0, 1, 3, 4]]).advantages.numpy()
    np.testing.assert_allclose(tr.advantages.numpy()[[0, 1, 3, 4]], a_keep)  # first 2 responses of 0 and 1
    assert tr.advantages[2] == tr.advantages[5] == tr.advantages[6] == 0
    assert tr.info["frac_truncated"] == pytest.approx(3 / 7)
    with pytest.raises(ParameterError, match="unknown advantage estimator"):
        adv.make_estimator("ppo")


# ---------------------------------------------------------------- tracker
def test_tracker_converges_to_true_quantiles():
    rng = np.random.default_rng(0)
    levels = [0.2, 0.5, 0.8]
    true = -np.log(1 - np.array(levels))  # Exp(1) quantiles
    dec = mvar.QuantileTracker(levels, lr=1.0, decay=0.6)
    const = mvar.QuantileTracker(levels, lr=0.1)
    tail = []
    dec.update(rng.exponential(size=5) + 3.0)  # deliberately bad warm start
    const.update(rng.exponential(size=5) + 3.0)
    for t in range(4000):
        x = rng.exponential(size=40)
        dec.update(x)
        const.update(x)
        if t >= 3000:
            tail.append(const.q.copy())
    np.testing.assert_allclose(dec.q, true, atol=0.03)
    np.testing.assert_allclose(np.mean(tail, 0), true, atol=0.03)
    assert dec.quantile(0.49) == dec.q[1]


def test_tracker_state_roundtrip_and_allreduce():
    rng = np.random.default_rng(1)
    a = mvar.QuantileTracker(lr=0.1)
    a.update(rng.normal(size=50))
    a.update(rng.normal(size=50))
    b = mvar.QuantileTracker()
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    x = rng.normal(size=64)
    a.update(x)
    b.update(x)
    np.testing.assert_array_equal(a.q, b.q)
    # two "ranks" with halves of the batch + summed counts == one rank with the whole batch
    c = mvar.QuantileTracker()
    c.load_state_dict(b.state_dict())
    y = rng.normal(size=64)
    b.update(y)
    q = torch.as_tensor(c.q)
    stats_other = torch.cat([(torch.as_tensor(y[32:])[None] < q[:, None]).sum(1).double(), torch.tensor([32.0])])
    c.update(y[:32], allreduce=lambda s: s + stats_other)
    np.testing.assert_allclose(c.q, b.q)


def test_riskpo_tracked_mode_state_save_load():
    rng = np.random.default_rng(2)
    est = adv.RiskPO(quantiles="tracked")
    ids = np.repeat(np.arange(10), 6)
    for _ in range(3):
        est((rng.random(60) < 0.4).astype(float), ids)
    clone = adv.RiskPO(quantiles="tracked")
    clone.load_state_dict(json.loads(json.dumps(est.state_dict())))
    r = (rng.random(60) < 0.4).astype(float)
    np.testing.assert_array_equal(est(r, ids).advantages.numpy(), clone(r, ids).advantages.numpy())
    assert est.tracker.t == 4


# ---------------------------------------------------------------- pass@k
def test_pass_at_k_matches_brute_force():
    for n in range(1, 9):
        for c in range(n + 1):
            x = np.array([1] * c + [0] * (n - c))
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(range(n), k))
                brute = np.mean([x[list(s)].max() for s in subsets])
                assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)
    np.testing.assert_allclose(pass_at_k(np.array([64, 64]), np.array([1, 0]), 4), [4 / 64, 0.0])
    with pytest.raises(ParameterError, match="n >= k"):
        pass_at_k(3, 1, 4)


# ---------------------------------------------------------------- surrogate
def test_ppo_clip_loss_gradient_and_clipping():
    torch.manual_seed(0)
    logp = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    A = torch.tensor([1.0, -1.0, 0.5, -2.0, 0.0, 1.5], dtype=torch.float64)
    mask = torch.ones(6, 5, dtype=torch.float64)
    mask[0, 3:] = 0
    loss, info = ppo_clip_loss(logp, logp.detach(), A, mask)
    loss.backward()
    expect = -(A[:, None] * mask) / mask.sum()  # on-policy: ratio 1, d/dlogp of -A r
    np.testing.assert_allclose(logp.grad.numpy(), expect.numpy())
    assert info["clip_frac"] == 0.0
    # ratio above 1 + eps with A > 0: clipped (no gradient); dual clip caps A < 0 at -A * 3
    old = torch.zeros(2, 1, dtype=torch.float64)
    new = torch.tensor([[0.5], [2.0]], dtype=torch.float64, requires_grad=True)
    l, _ = ppo_clip_loss(new, old, torch.tensor([1.0, -1.0], dtype=torch.float64),
                         torch.ones(2, 1, dtype=torch.float64))
    l.backward()
    assert new.grad.abs().max().item() == 0.0
    assert l.item() == pytest.approx((-1.2 + 3.0) / 2)


def test_quantile_modes_agree_on_one_bundle():
    """With a single bundle, per-bundle, batch and (warm-started) tracked quantiles coincide."""
    r, ids = _bundle_batch(GOLDEN_X)
    bid = np.zeros(25, int)
    a = adv.RiskPO(quantiles="bundle", credit="uniform")(r, ids, bundle_ids=bid).advantages
    b = adv.RiskPO(quantiles="batch", credit="uniform")(r, ids, bundle_ids=bid).advantages
    est = adv.RiskPO(quantiles="tracked", credit="uniform")
    c = est(r, ids, bundle_ids=bid).advantages
    np.testing.assert_allclose(b.numpy(), a.numpy())
    np.testing.assert_allclose(c.numpy(), a.numpy())
    assert est.tracker.quantile(0.2) == pytest.approx(0.8) and est.tracker.t == 1
