"""Fine-tunes as rands systems: CRN noise, block independence, selection, NPZ round trip."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import rands  # noqa: E402
from rands.errors import ParameterError  # noqa: E402
from rands.streams import Streams  # noqa: E402
from rands.applications.rlr.models import MLPClassifier, MLPDenoiser, load_npz, save_npz  # noqa: E402
from rands.applications.rlr.problem import FineTuneProblem  # noqa: E402
from rands.applications.rlr.rewards import ClassifierLogProb, QuadraticReward  # noqa: E402

SCHED = {"train_steps": 40, "num_steps": 4, "eta": 1.0}


def models():
    torch.manual_seed(0)
    a = MLPDenoiser(dim=2, hidden=8, temb=4, depth=1)
    b = MLPDenoiser(dim=2, hidden=8, temb=4, depth=1)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.net[-1].bias.add_(torch.tensor([0.3, -0.2]))  # shifts x_0 towards the reward's centre
    return a, b


def test_crn_identical_systems_and_block_independence():
    a, b = models()
    a2 = MLPDenoiser(dim=2, hidden=8, temb=4, depth=1)
    a2.load_state_dict(a.state_dict())
    reward = QuadraticReward(torch.tensor([1.0, -0.5]))
    prob = FineTuneProblem([a, a2, b], reward, SCHED, shape=(2,))
    reps = np.arange(6)
    crn = Streams(3, crn=True)
    y0 = prob.simulate(np.zeros(6, int), reps, crn)
    y1 = prob.simulate(np.ones(6, int), reps, crn)
    assert np.array_equal(y0, y1)  # same model, same noise under CRN
    ind = Streams(3, crn=False)
    assert not np.array_equal(prob.simulate(np.zeros(6, int), reps, ind), prob.simulate(np.ones(6, int), reps, ind))
    # a sample depends only on (seed, i, r), not on the block it arrives in
    mixed = prob.simulate(np.array([2, 0, 2, 1]), np.array([5, 3, 1, 0]), crn)
    assert mixed[1] == y0[3] and mixed[3] == y1[0]
    assert mixed[0] == prob.simulate(np.array([2]), np.array([5]), crn)[0]


def test_select_best_finetune_with_crn():
    a, b = models()
    reward = QuadraticReward(torch.tensor([1.0, -0.5]))
    prob = FineTuneProblem([a, b], reward, SCHED, shape=(2,), labels=["base", "tuned"])
    # truth by a large CRN sample: which system is better?
    big = Streams(99, crn=True)
    reps = np.arange(4000)
    diff = prob.simulate(np.ones(4000, int), reps, big) - prob.simulate(np.zeros(4000, int), reps, big)
    best = int(diff.mean() > 0)
    assert abs(diff.mean()) > 4 * diff.std() / np.sqrt(4000)
    res = rands.select(prob, "equal", seed=1, budget=400, crn=True)
    assert res.best == best and res.best_label == ["base", "tuned"][best]
    assert res.total_samples == 400


def test_npz_round_trip_and_problem_from_paths(tmp_path):
    a, b = models()
    clf = MLPClassifier(dim=2, hidden=4, classes=3)
    for m, n in [(a, "a"), (b, "b"), (clf, "clf")]:
        save_npz(m, tmp_path / f"{n}.npz")
    a2 = load_npz(tmp_path / "a.npz")
    x = torch.randn(3, 2)
    t = torch.tensor([1, 2, 3])
    assert torch.equal(a(x, t), a2(x, t))
    spec = {"kind": "classifier_logprob", "classifier": str(tmp_path / "clf.npz"), "target": 1}
    prob = FineTuneProblem([str(tmp_path / "a.npz"), str(tmp_path / "b.npz")], spec, SCHED, shape=(2,))
    p = prob.params()
    assert p["models"][0].endswith("a.npz") and p["reward"] == spec
    prob2 = FineTuneProblem(**p)
    st = Streams(0, crn=True)
    assert np.array_equal(prob.simulate(np.array([0, 1]), np.array([0, 0]), st),
                          prob2.simulate(np.array([0, 1]), np.array([0, 0]), st))
    assert isinstance(prob.reward, ClassifierLogProb)
    with pytest.raises(ParameterError, match="reward kind"):
        FineTuneProblem([a, b], {"kind": "nope"}, SCHED)
