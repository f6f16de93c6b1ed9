"""RiskPO adapters (TRL, verl: pure functions, lazy imports), policies-as-systems problem, CI smoke run."""
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import rands  # noqa: E402
from rands.applications.riskpo import advantages as adv  # noqa: E402
from rands.applications.riskpo import policy as P  # noqa: E402
from rands.applications.riskpo import task as T  # noqa: E402
from rands.applications.riskpo.adapters import trl as rp_trl  # noqa: E402
from rands.applications.riskpo.adapters import verl as rp_verl  # noqa: E402
from rands.streams import Streams  # noqa: E402

GOLDEN_X = [0, 1, 2, 2, 4]
GOLDEN_A = np.array([-2.3372, -0.6293, -0.1798, -0.1798, 0.0])


def _golden_rewards():
    r = np.zeros((5, 5))
    for j, x in enumerate(GOLDEN_X):
        r[:x, j] = 1.0
    return r  # (question, response)


def test_verl_pure_function_golden():
    rp_verl.reset()
    r = _golden_rewards().reshape(-1)
    T_len = 4
    tok = torch.zeros(25, T_len)
    lengths = np.random.default_rng(0).integers(1, T_len + 1, 25)
    mask = torch.zeros(25, T_len)
    for i, L in enumerate(lengths):
        mask[i, :L] = 1
        tok[i, L - 1] = r[i]  # verl puts the outcome reward on the last response token
    uids = np.repeat([f"uid-{c}" for c in "qwert"], 5).astype(object)
    cfg = {"norm_adv_by_std_in_grpo": True, "riskpo": {"credit": "uniform", "bundle_size": 5}}
    fn = rp_verl.make_adv_fn("riskpo")
    a, ret = fn(tok, mask, config=cfg, index=uids)
    expect = np.tile(GOLDEN_A, 5)[:, None] * mask.numpy()
    np.testing.assert_allclose(a.numpy(), expect, atol=1e-4)
    assert torch.equal(a, ret)
    # same vector as the core estimator with the documented (std) credit
    rp_verl.reset()
    cfg2 = {"riskpo": {"bundle_size": 5}}
    a2, _ = rp_verl.make_adv_fn("riskpo")(tok, mask, config=cfg2, index=uids)
    core = adv.RiskPO(bundle_size=5)(r, np.repeat(np.arange(5), 5), bundle_ids=np.zeros(25, int)).advantages
    np.testing.assert_allclose(a2.numpy(), core.numpy()[:, None] * mask.numpy(), atol=1e-6)
    # GRPO through the adapter equals the documented GRPO vector
    rp_verl.reset()
    g, _ = rp_verl.make_adv_fn("grpo")(torch.tensor([[0.], [0], [0], [1], [1]]), torch.ones(5, 1), config={},
                                       index=np.array(["a"] * 5, dtype=object))
    np.testing.assert_allclose(g.numpy()[:, 0], [-0.7303, -0.7303, -0.7303, 1.0954, 1.0954], atol=1e-4)
    # tracker state persists across calls and round-trips
    rp_verl.reset()
    fn_t = rp_verl.make_adv_fn("riskpo")
    cfg_t = {"riskpo": {"quantiles": "tracked"}}
    fn_t(tok, mask, config=cfg_t, index=uids)
    fn_t(tok, mask, config=cfg_t, index=uids)
    st = rp_verl.state_dict()
    assert st["riskpo"]["tracker"]["t"] == 2
    rp_verl.reset()


def test_trl_pure_function_golden():
    r = torch.tensor(_golden_rewards().reshape(-1))  # 5 contiguous groups of G = 5
    prompts = [f"prompt {i}" for i in range(5) for _ in range(5)]
    a, info = rp_trl.grouped_advantages(r, 5, adv.RiskPO(credit="uniform"), prompts=prompts)
    np.testing.assert_allclose(a.numpy(), np.tile(GOLDEN_A, 5), atol=1e-4)
    g, _ = rp_trl.grouped_advantages(torch.tensor([0., 0, 0, 1, 1]), 5, adv.GRPO())
    np.testing.assert_allclose(g.numpy(), [-0.7303, -0.7303, -0.7303, 1.0954, 1.0954], atol=1e-4)
    # bundles follow prompts, not batch position: permuting whole groups permutes advantages
    rng = np.random.default_rng(0)
    rr = (rng.random((20, 4)) < 0.5).astype(float)
    pr = [f"p{i}" for i in range(20)]
    est = adv.RiskPO(bundle_size=5)
    a1, _ = rp_trl.grouped_advantages(torch.tensor(rr.reshape(-1)), 4, est, prompts=pr)
    perm = rng.permutation(20)
    a2, _ = rp_trl.grouped_advantages(torch.tensor(rr[perm].reshape(-1)), 4, est, prompts=[pr[i] for i in perm])
    np.testing.assert_allclose(a2.numpy().reshape(20, 4), a1.numpy().reshape(20, 4)[perm])


def test_trl_trainer_needs_trl_only_when_used(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # as if TRL were not installed
    monkeypatch.setattr(rp_trl, "_CACHE", {})
    with pytest.raises(ImportError, match="needs TRL"):
        rp_trl.RiskPOGRPOTrainer  # noqa: B018
    with pytest.raises(AttributeError):
        rp_trl.NoSuchThing  # noqa: B018


def test_verl_register_needs_verl_only_when_used(monkeypatch):
    monkeypatch.setitem(sys.modules, "verl.trainer.ppo.core_algos", None)  # as if verl were not installed
    with pytest.raises(ImportError, match="needs verl"):
        rp_verl.register()


def test_import_rands_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, rands; rands.select; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_task_reward_and_buckets():
    c = T.candidates((2, 3, 4))
    assert len(c) == 54
    r = T.reward(np.array([[4, T.TIMES, 3, T.MINUS, 2], [4, T.TIMES, 3, T.MINUS, 5]]),
                 np.array([[2, 3, 4]] * 2), np.array([10, 7]))
    np.testing.assert_array_equal(r, [1.0, 0.0])
    tr, ev = T.make_splits(seed=0, eval_per_bucket=20)
    key = lambda s: {(tuple(sorted(d)), int(t)) for d, t in zip(s.digits, s.targets)}  # noqa: E731
    assert not key(tr) & key(ev)
    assert np.bincount(ev.bucket).tolist() == [20, 20, 20]
    for i in range(0, len(ev), 7):  # n_solutions really counts distinct solutions
        cc = T.candidates(ev.digits[i])
        n = T.reward(cc, np.repeat(ev.digits[i][None], len(cc), 0), np.full(len(cc), ev.targets[i])).sum()
        assert n == ev.n_solutions[i]


@pytest.fixture(scope="module")
def small_policies():
    tr, _ = T.make_splits(seed=0, eval_per_bucket=20)
    a = P.warm_start(tr.subset(np.arange(0, len(tr), 3)), epochs=3, noise=0.1)
    torch.manual_seed(5)
    b = P.Policy()
    return a, b


def test_kv_cached_sampling_matches_full_forward(small_policies):
    pol = small_policies[0]
    _, ev = T.make_splits(seed=0, eval_per_bucket=20)
    pr = torch.as_tensor(ev.prompts()).repeat_interleave(4, 0)
    resp, lp = pol.sample(pr, torch.Generator().manual_seed(0))
    lp2, _ = pol.log_probs(pr, resp)
    np.testing.assert_allclose(lp.numpy(), lp2.detach().numpy(), atol=1e-4)


def test_policy_problem_crn_truth_and_selection(small_policies):
    a, b = small_policies
    from rands.applications.riskpo.problem import PolicyProblem
    prob = PolicyProblem([a, b, a], labels=["sft", "random", "sft2"], eval_per_bucket=20)
    assert prob.true_means[0] == prob.true_means[2] > 1000 * prob.true_means[1]
    crn = Streams(4, crn=True)
    reps = np.arange(200)
    np.testing.assert_array_equal(prob.prompt_index(reps, crn, np.zeros(200, int)),
                                  prob.prompt_index(reps, crn, np.ones(200, int)))
    ind = Streams(4)
    assert (prob.prompt_index(reps, ind, np.zeros(200, int)) != prob.prompt_index(reps, ind, np.ones(200, int))).any()
    # identical policies under CRN give identical samples; samples do not depend on the block
    x = prob.simulate(np.repeat([0, 2], 200), np.tile(reps, 2), crn).reshape(2, -1)
    np.testing.assert_array_equal(x[0], x[1])
    y = prob.simulate(np.array([2, 0]), np.array([150, 37]), crn)
    np.testing.assert_array_equal(y, [x[1, 150], x[0, 37]])
    # Monte Carlo mean agrees with the exact pass@1
    n = 4000
    z = prob.simulate(np.zeros(n, int), np.arange(n), ind)
    se = np.sqrt(prob.true_means[0] * (1 - prob.true_means[0]) / n)
    assert abs(z.mean() - prob.true_means[0]) < 4 * se
    res = rands.select(prob, "equal", seed=0, budget=3000)
    assert prob.true_means[res.best] == prob.true_means.max()


def test_ci_smoke_training_run():
    """One seed, few steps, every method: runs end to end and reports the metrics (CI smoke, well < 2 min)."""
    from rands.applications.riskpo import train as TR
    t0 = time.time()
    tr, ev = T.make_splits(seed=0, eval_per_bucket=20)
    init = P.warm_start(tr.subset(np.arange(0, len(tr), 4)), epochs=2, noise=0.1)
    for m in TR.METHODS:
        cfg = TR.TrainConfig(method=m, seed=0, steps=3, prompts_per_step=10, group_size=4, eval_every=3,
                             eval_per_bucket_curve=5, eval_samples_curve=8, eval_samples_final=64)
        _, h = TR.train(cfg, init, tr, ev)
        assert len(h["train"]) == 3 and len(h["curve"]) == 2
        fin = h["final"]
        for b in ("easy", "medium", "hard", "all"):
            p = [fin[b][f"pass@{k}"] for k in (1, 4, 16, 64)]
            assert all(0 <= x <= 1 for x in p) and p == sorted(p)
            assert 0 <= fin[b]["coverage"] <= 1 and fin[b]["entropy"] >= 0
        if m.startswith("riskpo"):
            assert all(rec["frac_pos"] == 0.0 for rec in h["train"])  # natural baseline
    assert time.time() - t0 < 120
