"""NAS-Bench-201 cells and a small network for 8x8 images (torch).

Operations as in the benchmark: ``nor_conv_kxk`` = ReLU -> Conv(k, stride 1) -> BatchNorm,
``avg_pool_3x3`` = 3x3 average pooling (stride 1, padding 1), ``skip_connect`` =
identity, ``none`` = zero. Node j of a cell is the sum over i < j of op_ij(node i);
the cell's output is node 3. The macro skeleton follows the benchmark (stem,
stacks of N cells separated by residual reduction blocks, global pooling,
classifier), shrunk for 8x8 inputs: two stacks of ``cells`` cells at C and 2C channels.
"""
from __future__ import annotations

import torch
from torch import nn

from .space import EDGES, _as_ops


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                                nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown operation {name!r}")


class Cell(nn.Module):
    """One NAS-Bench-201 cell with the given 6 edge operations."""

    def __init__(self, ops, channels: int):
        super().__init__()
        self.ops_names = _as_ops(ops)
        self.edges = nn.ModuleList(make_op(op, channels) for op in self.ops_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            total = None
            for e, (src, tgt) in enumerate(EDGES):
                if tgt == target:
                    y = self.edges[e](nodes[src])
                    total = y if total is None else total + y
            nodes.append(total)
        return nodes[3]


class ResidualReduction(nn.Module):
    """The benchmark's residual block between stacks: stride 2, doubles channels."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


class TinyNet(nn.Module):
    """Stem, ``cells`` cells at C, reduction, ``cells`` cells at 2C, pooling, classifier."""

    def __init__(self, ops, channels: int = 8, cells: int = 1, in_channels: int = 1, classes: int = 10):
        super().__init__()
        c = channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
        layers += [Cell(ops, c) for _ in range(cells)]
        layers.append(ResidualReduction(c, 2 * c))
        layers += [Cell(ops, 2 * c) for _ in range(cells)]
        layers += [nn.BatchNorm2d(2 * c), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(2 * c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
