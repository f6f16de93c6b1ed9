"""The verl adapter against the real verl (0.9.1, installed with --no-deps by .ci/run): registration,
and the registered estimator called through verl's own ``compute_advantage`` with an OmegaConf config."""
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("omegaconf")
core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
from omegaconf import OmegaConf  # noqa: E402

from rands.applications.riskpo import advantages as adv  # noqa: E402
from rands.applications.riskpo.adapters import verl as rp_verl  # noqa: E402
from rands.errors import ParameterError  # noqa: E402

GOLDEN_A = np.array([-2.3372, -0.6293, -0.1798, -0.1798, 0.0])  # tests/test_riskpo.py's bundle example


@pytest.fixture(autouse=True)
def _fresh():
    rp_verl.reset()
    yield
    rp_verl.reset()


def _compute_advantage():
    from verl.trainer.ppo.ray_trainer import compute_advantage
    return compute_advantage


def _batch(n_q=5, G=5, T=4, seed=0, scores=None):
    from verl.protocol import DataProto
    rng = np.random.default_rng(seed)
    n = n_q * G
    r = rng.integers(0, 2, n).astype(float) if scores is None else np.asarray(scores, float)
    lengths = rng.integers(1, T + 1, n)
    mask = torch.zeros(n, T)
    tok = torch.zeros(n, T)
    for i, L in enumerate(lengths):
        mask[i, :L] = 1
        tok[i, L - 1] = r[i]  # verl puts the outcome reward on the last response token
    uids = np.repeat([f"uid-{i:03d}" for i in range(n_q)], G).astype(object)
    data = DataProto.from_dict(tensors={"token_level_rewards": tok, "response_mask": mask},
                               non_tensors={"uid": uids})
    return data, r, mask, uids


def _algo(**riskpo):
    return OmegaConf.create({"adv_estimator": "riskpo", "gamma": 1.0, "lam": 1.0,
                             "norm_adv_by_std_in_grpo": True, "riskpo": riskpo})


def test_register_is_idempotent_and_leaves_verl_estimators_alone():
    rp_verl.register()
    rp_verl.register()  # used to raise "already registered"
    import rands.applications.riskpo.adapters.verl_register  # noqa: F401  (what VERL_USE_EXTERNAL_MODULES imports)
    rp_verl.register(("riskpo", "rsgrpo", "nsr", "grpo"))
    assert core_algos.get_adv_estimator_fn("riskpo") is rp_verl.make_adv_fn("riskpo")
    assert core_algos.get_adv_estimator_fn("grpo") is core_algos.compute_grpo_outcome_advantage


def test_external_modules_env_then_register_in_a_fresh_process():
    code = ("import verl.trainer.ppo.core_algos as c\n"
            "from rands.applications.riskpo.adapters import verl as v\n"
            "v.register(); v.register(('riskpo', 'nsr'))\n"
            "print(sorted(k for k in ('riskpo', 'rsgrpo', 'nsr') if k in c.ADV_ESTIMATOR_REGISTRY))")
    env = {**os.environ, "VERL_USE_EXTERNAL_MODULES": "rands.applications.riskpo.adapters.verl_register"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "['nsr', 'riskpo', 'rsgrpo']"


def test_golden_vector_through_verls_compute_advantage_with_omegaconf():
    rp_verl.register()
    GOLDEN_X = [0, 1, 2, 2, 4]
    r = np.zeros((5, 5))
    for j, x in enumerate(GOLDEN_X):
        r[:x, j] = 1.0
    data, _, mask, _ = _batch(scores=r.reshape(-1))
    out = _compute_advantage()(data, adv_estimator="riskpo", num_repeat=5, config=_algo(credit="uniform",
                                                                                        bundle_size=5))
    a = out.batch["advantages"].numpy()
    np.testing.assert_allclose(a, np.tile(GOLDEN_A, 5)[:, None] * mask.numpy(), atol=1e-4)
    assert torch.equal(out.batch["advantages"], out.batch["returns"])


def test_registered_estimator_equals_core_and_tracker_persists():
    rp_verl.register(("riskpo", "rsgrpo"))
    ca = _compute_advantage()
    data, r, mask, uids = _batch(n_q=10, G=4, seed=1)
    q = rp_verl.uid_to_int(uids)
    out = ca(data, adv_estimator="riskpo", config=_algo(bundle_size=5))
    core = adv.RiskPO(bundle_size=5)(r, q, bundle_ids=q // 5).advantages.numpy()
    np.testing.assert_allclose(out.batch["advantages"].numpy(), core[:, None] * mask.numpy(), atol=1e-6)
    cfg_rs = OmegaConf.create({"adv_estimator": "rsgrpo", "rsgrpo": {"beta": 3.0}})
    out = ca(data, adv_estimator="rsgrpo", config=cfg_rs)
    np.testing.assert_allclose(out.batch["advantages"].numpy(),
                               adv.RSGRPO(beta=3.0)(r, q).advantages.numpy()[:, None] * mask.numpy(), atol=1e-6)
    rp_verl.reset()
    cfg_t = _algo(quantiles="tracked")
    for s in range(3):
        ca(_batch(n_q=10, G=4, seed=s)[0], adv_estimator="riskpo", config=cfg_t)
    assert rp_verl.state_dict()["riskpo"]["tracker"]["t"] == 3


def test_unequal_groups_refused_with_instructions_or_truncated():
    rp_verl.register(("riskpo", "nsr"))
    ca = _compute_advantage()
    data, r, mask, uids = _batch(n_q=4, G=4, seed=2)
    keep = np.r_[0:4, 4:7, 8:12, 12:14]  # multi-turn style: uids with 4, 3, 4 and 2 rows
    sub = data.select_idxs(keep)
    with pytest.raises(ParameterError, match="unequal_groups=truncate"):
        ca(sub, adv_estimator="riskpo", config=_algo(bundle_size=2))
    rp_verl.reset()
    out = ca(sub, adv_estimator="riskpo", config=_algo(bundle_size=2, unequal_groups="truncate"))
    q = rp_verl.uid_to_int(uids[keep])
    expect = adv.RiskPO(bundle_size=2, unequal_groups="truncate")(r[keep], q, bundle_ids=q // 2).advantages
    np.testing.assert_allclose(out.batch["advantages"].numpy(), expect.numpy()[:, None] * mask[keep].numpy(),
                               atol=1e-6)
    out = ca(sub, adv_estimator="nsr", config=OmegaConf.create({"nsr": {}}))  # per-question: supported
    np.testing.assert_allclose(out.batch["advantages"].numpy(),
                               adv.NSR()(r[keep], q).advantages.numpy()[:, None] * mask[keep].numpy(), atol=1e-6)
