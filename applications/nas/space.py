"""The NAS-Bench-201 cell search space (Dong & Yang, ICLR 2020).

A cell is a DAG on 4 nodes; each of the 6 edges (i -> j, i < j) carries one of
5 operations, so there are 5**6 = 15,625 architectures. The benchmark writes an
architecture as ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: the three groups list
the edges into nodes 1, 2 and 3, each ``op~i`` naming the operation on the edge
from node i. Index order: edge e takes the e-th base-5 digit (edge 0 = (0->1)
is the most significant), operations in the order of :data:`OPS`. This is our
enumeration; the official benchmark file carries its own ``meta_archs`` order,
and :func:`arch_index` is only for our space.
"""
from __future__ import annotations

import numpy as np

from rands.errors import ParameterError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: edges (source, target) in benchmark string order
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
N_ARCHS = len(OPS) ** len(EDGES)
_OP_INDEX = {op: n for n, op in enumerate(OPS)}


def arch_ops(index: int) -> tuple[str, ...]:
    """Operations on the 6 edges (in :data:`EDGES` order) of architecture ``index``."""
    if not 0 <= int(index) < N_ARCHS:
        raise ParameterError(f"architecture index must be in [0, {N_ARCHS}), got {index}")
    digits = []
    x = int(index)
    for _ in EDGES:
        digits.append(x % len(OPS))
        x //= len(OPS)
    return tuple(OPS[d] for d in reversed(digits))


def arch_string(ops_or_index) -> str:
    """Benchmark string of an architecture given by index or by its 6 edge operations."""
    ops = arch_ops(ops_or_index) if isinstance(ops_or_index, (int, np.integer)) else tuple(ops_or_index)
    if len(ops) != len(EDGES) or any(op not in _OP_INDEX for op in ops):
        raise ParameterError(f"an architecture is 6 operations from {OPS}, got {ops!r}")
    groups = []
    for target in (1, 2, 3):
        parts = [f"{ops[e]}~{src}" for e, (src, tgt) in enumerate(EDGES) if tgt == target]
        groups.append("|" + "|".join(parts) + "|")
    return "+".join(groups)


def parse_arch(text: str) -> tuple[str, ...]:
    """Edge operations of a benchmark string; raises ParameterError on a malformed one."""
    if not isinstance(text, str):
        raise ParameterError(f"architecture string must be a str, got {text!r}")
    groups = text.split("+")
    if len(groups) != 3:
        raise ParameterError(f"architecture string needs 3 '+'-separated node groups: {text!r}")
    ops: dict[tuple[int, int], str] = {}
    for target, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            raise ParameterError(f"node group {group!r} of {text!r} must be wrapped in '|'")
        items = group[1:-1].split("|")
        if len(items) != target:
            raise ParameterError(f"node {target} needs {target} inputs in {text!r}, got {len(items)}")
        for src, item in enumerate(items):
            op, sep, s = item.partition("~")
            if not sep or op not in _OP_INDEX or s != str(src):
                raise ParameterError(f"bad edge {item!r} in {text!r}: expected 'op~{src}' with op in {OPS}")
            ops[(src, target)] = op
    return tuple(ops[e] for e in EDGES)


def arch_index(text_or_ops) -> int:
    """Index in our enumeration of an architecture string or edge-operation tuple."""
    ops = parse_arch(text_or_ops) if isinstance(text_or_ops, str) else tuple(text_or_ops)
    x = 0
    for op in ops:
        if op not in _OP_INDEX:
            raise ParameterError(f"unknown operation {op!r}; valid: {OPS}")
        x = x * len(OPS) + _OP_INDEX[op]
    return x


def enumerate_archs() -> list[str]:
    """All 15,625 benchmark strings in index order."""
    return [arch_string(i) for i in range(N_ARCHS)]


def ops_matrix(indices) -> np.ndarray:
    """(n, 6) operation codes of the given architecture indices (vectorized)."""
    idx = np.asarray(indices, dtype=np.int64)
    digits = np.empty((idx.shape[0], len(EDGES)), dtype=np.int64)
    x = idx.copy()
    for e in range(len(EDGES) - 1, -1, -1):
        digits[:, e] = x % len(OPS)
        x //= len(OPS)
    return digits


def shared_ops(a, b) -> int:
    """Number of edges on which two architectures (strings or indices) carry the same operation."""
    oa, ob = _as_ops(a), _as_ops(b)
    return sum(x == y for x, y in zip(oa, ob))


def is_degenerate(ops) -> bool:
    """True when no path from the input node reaches the output (every route hits 'none')."""
    ops = _as_ops(ops)
    reach = {0}
    for (src, tgt), op in zip(EDGES, ops):
        if op != "none" and src in reach:
            reach.add(tgt)
    return 3 not in reach


def _as_ops(x) -> tuple[str, ...]:
    if isinstance(x, str):
        return parse_arch(x)
    if isinstance(x, (int, np.integer)):
        return arch_ops(int(x))
    return tuple(x)
