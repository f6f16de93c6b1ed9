"""A tiny decoder-only transformer policy for Countdown-3 and its SFT warm start.

The warm start imitates a biased greedy solver (digits sorted descending; at each
step the op that moves closest to the target) with a fraction of response tokens
randomised, so the initial policy is peaked on one (often wrong) expression: a
setting where GRPO-style training is known to collapse entropy (reference note
riskpo.md section 13).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import task as T


@dataclass
class PolicyConfig:
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 128
    vocab: int = T.VOCAB
    max_len: int = T.PROMPT_LEN + T.RESPONSE_LEN


class _Block(nn.Module):
    """Pre-LN causal self-attention + MLP block with an optional key/value cache."""

    def __init__(self, c: PolicyConfig):
        super().__init__()
        self.h = c.n_heads
        self.ln1 = nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.ff = nn.Sequential(nn.Linear(c.d_model, c.d_ff), nn.GELU(), nn.Linear(c.d_ff, c.d_model))

    def forward(self, x: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        n, L, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(n, L, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat([cache[0], k], dim=2)
                v = torch.cat([cache[1], v], dim=2)
            cache[0], cache[1] = k, v
        if L > 1 and k.shape[2] != L:
            raise ValueError("a cached forward must add one position at a time after the prompt")
        a = F.scaled_dot_product_attention(q, k, v, is_causal=L > 1)
        x = x + self.proj(a.transpose(1, 2).reshape(n, L, d))
        return x + self.ff(self.ln2(x))


class Policy(nn.Module):
    """Causal transformer with learned positions; ``forward(tokens) -> logits``."""

    def __init__(self, config: PolicyConfig | None = None):
        super().__init__()
        self.config = c = config or PolicyConfig()
        self.tok = nn.Embedding(c.vocab, c.d_model)
        self.pos = nn.Embedding(c.max_len, c.d_model)
        self.blocks = nn.ModuleList([_Block(c) for _ in range(c.n_layers)])
        self.ln = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab)

    def forward(self, tokens: torch.Tensor, caches: list | None = None, start: int = 0) -> torch.Tensor:
        """Logits for ``tokens`` at positions start..; ``caches`` (one [k, v] per layer) when decoding."""
        L = tokens.shape[1]
        x = self.tok(tokens) + self.pos(torch.arange(start, start + L, device=tokens.device))
        for i, b in enumerate(self.blocks):
            x = b(x, None if caches is None else caches[i])
        return self.head(self.ln(x))

    def response_logits(self, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """Logits (n, 5, vocab) predicting each response token from prompt and prefix."""
        seq = torch.cat([prompts, responses[:, :-1]], dim=1)
        return self.forward(seq)[:, T.PROMPT_LEN - 1:]

    def log_probs(self, prompts: torch.Tensor, responses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probabilities (n, 5) of ``responses`` and per-token entropies (n, 5)."""
        lp = F.log_softmax(self.response_logits(prompts, responses), dim=-1)
        tok_lp = lp.gather(-1, responses.unsqueeze(-1)).squeeze(-1)
        ent = -(lp.exp() * lp).sum(-1)
        return tok_lp, ent

    @torch.no_grad()
    def sample(self, prompts: torch.Tensor, generator: torch.Generator, temperature: float = 1.0,
               chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample responses (n, 5) at ``temperature`` (KV-cached); also their per-token log-probs (n, 5)."""
        outs, lps = [], []
        for s in range(0, prompts.shape[0], chunk):
            caches = [[None, None] for _ in self.blocks]
            logits = self.forward(prompts[s:s + chunk], caches)[:, -1]
            toks, lp_all = [], []
            for t in range(T.RESPONSE_LEN):
                lp = F.log_softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(lp.exp(), 1, generator=generator)
                lp_all.append(lp.gather(-1, nxt))
                toks.append(nxt)
                if t + 1 < T.RESPONSE_LEN:
                    logits = self.forward(nxt, caches, start=T.PROMPT_LEN + t)[:, -1]
            outs.append(torch.cat(toks, dim=1))
            lps.append(torch.cat(lp_all, dim=1))
        return torch.cat(outs), torch.cat(lps)

    @torch.no_grad()
    def sample_with_uniforms(self, prompts: torch.Tensor, uniforms: torch.Tensor, temperature: float = 1.0,
                             chunk: int = 8192) -> torch.Tensor:
        """Responses (n, 5) by inverse-CDF sampling with given uniforms (n, 5) in (0, 1).

        Makes a response a pure function of its uniforms (for R&S streams and CRN).
        """
        outs = []
        for s in range(0, prompts.shape[0], chunk):
            caches = [[None, None] for _ in self.blocks]
            logits = self.forward(prompts[s:s + chunk], caches)[:, -1]
            u = uniforms[s:s + chunk].to(torch.float64)
            toks = []
            for t in range(T.RESPONSE_LEN):
                cdf = torch.cumsum(torch.softmax(logits.to(torch.float64) / temperature, dim=-1), dim=-1)
                nxt = torch.searchsorted(cdf, u[:, t:t + 1].contiguous()).clamp_max(cdf.shape[-1] - 1)
                toks.append(nxt)
                if t + 1 < T.RESPONSE_LEN:
                    logits = self.forward(nxt, caches, start=T.PROMPT_LEN + t)[:, -1]
            outs.append(torch.cat(toks, dim=1))
        return torch.cat(outs)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def greedy_solution(digits: np.ndarray, target: int) -> np.ndarray:
    """The biased greedy solver: digits sorted descending, each op the one moving closest to T."""
    d = sorted((int(x) for x in digits), reverse=True)
    x, out = d[0], [d[0]]
    for y in d[1:]:
        vals = [(abs(x + y - target), 0, T.PLUS, x + y), (abs(x - y - target), 1, T.MINUS, x - y),
                (abs(x * y - target), 2, T.TIMES, x * y)]
        _, _, op, x = min(vals)
        out += [op, y]
    return np.array(out, dtype=np.int64)


def sft_targets(split: T.Split, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Greedy responses for every instance with a fraction ``noise`` of tokens randomised (by type)."""
    resp = np.stack([greedy_solution(d, t) for d, t in zip(split.digits, split.targets)])
    flip = rng.random(resp.shape) < noise
    rand_digits = np.take_along_axis(split.digits, rng.integers(0, 3, resp.shape), axis=1)
    rand_ops = rng.integers(T.PLUS, T.TIMES + 1, resp.shape)
    is_digit = np.zeros(resp.shape, bool)
    is_digit[:, [0, 2, 4]] = True
    return np.where(flip, np.where(is_digit, rand_digits, rand_ops), resp)


def warm_start(train: T.Split, *, seed: int = 0, epochs: int = 20, noise: float = 0.15, lr: float = 3e-3,
               batch: int = 64, config: PolicyConfig | None = None) -> Policy:
    """Supervised fine-tuning on noisy greedy solutions (fresh noise each epoch); returns the policy."""
    torch.manual_seed(seed)
    pol = Policy(config)
    opt = torch.optim.Adam(pol.parameters(), lr=lr)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5F7]))
    prompts = torch.as_tensor(train.prompts())
    n = len(train)
    for _ in range(epochs):
        targets = torch.as_tensor(sft_targets(train, noise, rng))
        perm = rng.permutation(n)
        for s in range(0, n, batch):
            idx = torch.as_tensor(perm[s:s + batch])
            logits = pol.response_logits(prompts[idx], targets[idx])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[idx].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return pol


def save(policy: Policy, path: str) -> None:
    """Save weights and config (a state dict of tensors plus a config dict; loaded with weights_only)."""
    torch.save({"config": asdict(policy.config), "state": policy.state_dict()}, path)


def load(path: str) -> Policy:
    blob = torch.load(path, weights_only=True)
    pol = Policy(PolicyConfig(**blob["config"]))
    pol.load_state_dict(blob["state"])
    return pol
