"""Countdown-3: a verifiable-reward arithmetic task small enough for CPU RL.

An instance is three digits (a, b, c) in 1..9 shown in random order and a target
T in [1, 99]. A response is five tokens ``x op y op z`` (a permutation of the
digits, ops in {+, -, *}) evaluated left to right; the reward is 1 iff the digits
are used exactly and the value equals T, else 0. All 6 x 9 = 54 candidate
expressions are enumerated, so every instance knows its solution set S:
|S| = 1 is "hard", 2-3 "medium", >= 4 "easy" (distinct expression strings).

Train and evaluation instances are disjoint in the (digit multiset, target) key.
Design: reference note riskpo.md section 13 (CPU-scale reproduction).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ...errors import ParameterError

# vocabulary: 0..9 digits, then ops and specials
PLUS, MINUS, TIMES, BOS, SEP = 10, 11, 12, 13, 14
VOCAB = 15
OPS = (PLUS, MINUS, TIMES)
OP_CHARS = {PLUS: "+", MINUS: "-", TIMES: "*"}
PROMPT_LEN = 7  # BOS a b c SEP T_tens T_units
RESPONSE_LEN = 5  # x op y op z
BUCKETS = ("easy", "medium", "hard")


def _apply(x: np.ndarray, op: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(op == PLUS, x + y, np.where(op == MINUS, x - y, x * y))


def evaluate(responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-to-right value of responses (n, 5) and a validity mask (digit/op positions)."""
    r = np.asarray(responses, dtype=np.int64)
    d = r[:, [0, 2, 4]]
    o = r[:, [1, 3]]
    valid = np.all((d >= 1) & (d <= 9), axis=1) & np.all((o >= PLUS) & (o <= TIMES), axis=1)
    v = _apply(_apply(d[:, 0], o[:, 0], d[:, 1]), o[:, 1], d[:, 2])
    return v, valid


def reward(responses: np.ndarray, digits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Binary verifiable reward of responses (n, 5) for instances (digits (n, 3), targets (n,))."""
    r = np.asarray(responses, dtype=np.int64)
    v, valid = evaluate(r)
    used = np.sort(r[:, [0, 2, 4]], axis=1)
    same = np.all(used == np.sort(np.asarray(digits), axis=1), axis=1)
    return (valid & same & (v == np.asarray(targets))).astype(np.float64)


def candidates(digits) -> np.ndarray:
    """All distinct candidate responses (m, 5) for one digit triple (<= 54)."""
    out = set()
    for p in itertools.permutations(digits):
        for o1, o2 in itertools.product(OPS, OPS):
            out.add((p[0], o1, p[1], o2, p[2]))
    return np.array(sorted(out), dtype=np.int64)


def response_code(responses: np.ndarray) -> np.ndarray:
    """An integer code per response (base-16 digits), for counting distinct solutions."""
    r = np.asarray(responses, dtype=np.int64)
    return ((((r[:, 0] * 16 + r[:, 1]) * 16 + r[:, 2]) * 16 + r[:, 3]) * 16 + r[:, 4])


def to_text(response) -> str:
    return "".join(OP_CHARS.get(int(t), str(int(t))) for t in response)


@dataclass
class Split:
    """Instances of one split: digits (n, 3) in display order, targets (n,), n_solutions (n,), bucket (n,)."""

    digits: np.ndarray
    targets: np.ndarray
    n_solutions: np.ndarray
    bucket: np.ndarray  # 0 easy, 1 medium, 2 hard

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def prompts(self, idx=None) -> np.ndarray:
        """Token prompts (n, 7): BOS a b c SEP tens units."""
        idx = np.arange(len(self)) if idx is None else np.asarray(idx)
        d = self.digits[idx]
        t = self.targets[idx]
        n = len(idx)
        return np.column_stack([np.full(n, BOS), d, np.full(n, SEP), t // 10, t % 10]).astype(np.int64)

    def subset(self, idx) -> "Split":
        idx = np.asarray(idx)
        return Split(self.digits[idx], self.targets[idx], self.n_solutions[idx], self.bucket[idx])


def bucket_of(n_solutions: np.ndarray) -> np.ndarray:
    n = np.asarray(n_solutions)
    return np.where(n >= 4, 0, np.where(n >= 2, 1, 2)).astype(np.int64)


def all_instances() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (sorted digit triple, reachable target in [1, 99]) with its number of solutions."""
    keys_d, keys_t, counts = [], [], []
    for trip in itertools.combinations_with_replacement(range(1, 10), 3):
        c = candidates(trip)
        v, _ = evaluate(c)
        ok = (v >= 1) & (v <= 99)
        tv, cnt = np.unique(v[ok], return_counts=True)
        keys_d.append(np.repeat(np.array([trip]), len(tv), axis=0))
        keys_t.append(tv)
        counts.append(cnt)
    return np.concatenate(keys_d), np.concatenate(keys_t), np.concatenate(counts)


def make_splits(seed: int = 0, eval_per_bucket: int = 100) -> tuple[Split, Split]:
    """Disjoint train / evaluation splits; evaluation is stratified (eval_per_bucket per bucket).

    Digits are shown in a random (but fixed by ``seed``) order.
    """
    if eval_per_bucket < 1:
        raise ParameterError(f"eval_per_bucket must be >= 1, got {eval_per_bucket}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5C0])) 
    d, t, cnt = all_instances()
    b = bucket_of(cnt)
    eval_idx = []
    for k in range(3):
        members = np.flatnonzero(b == k)
        if len(members) < 2 * eval_per_bucket:
            raise ParameterError(f"eval_per_bucket={eval_per_bucket} too large: bucket {BUCKETS[k]} "
                                 f"has {len(members)} instances (need at least twice as many)")
        eval_idx.append(rng.choice(members, eval_per_bucket, replace=False))
    eval_idx = np.sort(np.concatenate(eval_idx))
    train_idx = np.setdiff1d(np.arange(len(t)), eval_idx)
    perm = rng.permuted(np.tile(np.arange(3), (len(t), 1)), axis=1)
    shown = np.take_along_axis(d, perm, axis=1)

    def split(idx):
        return Split(shown[idx], t[idx], cnt[idx], b[idx])

    return split(train_idx), split(eval_idx)
