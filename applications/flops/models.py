"""Small models for the CPU-scale reproduction: an MLP and a tiny ViT on 8x8 digits.

Plain nn.Linear layers (the LR estimator hooks them); the attention is written
out with tensor ops so the model needs no custom layer for forward learning.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MLP", "TinyViT", "build_model", "MODELS"]

#: model names accepted by ``build_model``; "vit-m" is the ~0.9M-parameter ViT of the Adam study
MODELS = ("mlp", "vit", "vit-m")


class MLP(nn.Module):
    """64 -> hidden -> classes with a tanh hidden layer (about 9.6k parameters at hidden=128)."""

    def __init__(self, inputs: int = 64, hidden: int = 128, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x.reshape(x.shape[0], -1))))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).reshape(n, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), -1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


class TinyViT(nn.Module):
    """ViT on 8x8 images: 4x4 patches -> 4 tokens + [cls], dim 32, 2 blocks, 2 heads."""

    def __init__(self, dim: int = 32, depth: int = 2, heads: int = 2, mlp: int = 64, classes: int = 10,
                 patch: int = 4, side: int = 8) -> None:
        super().__init__()
        self.patch, self.side = patch, side
        tokens = (side // patch) ** 2
        self.embed = nn.Linear(patch * patch, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(0.02 * torch.randn(1, tokens + 1, dim))
        self.blocks = nn.ModuleList(_Block(dim, heads, mlp) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        p, s = self.patch, self.side
        img = x.reshape(n, s // p, p, s // p, p).permute(0, 1, 3, 2, 4).reshape(n, -1, p * p)
        z = torch.cat([self.cls.expand(n, -1, -1), self.embed(img)], 1) + self.pos
        for blk in self.blocks:
            z = blk(z)
        return self.head(self.ln(z[:, 0]))


def build_model(name: str) -> nn.Module:
    if name == "mlp":
        return MLP()
    if name == "vit":
        return TinyViT()
    if name == "vit-m":
        # dim 192, 2 blocks, 4 heads, MLP 768: 898k parameters, 894k of them in nn.Linear layers
        return TinyViT(dim=192, depth=2, heads=4, mlp=768)
    from rands.errors import ParameterError
    raise ParameterError(f"model must be one of {', '.join(MODELS)}; got {name!r}")
