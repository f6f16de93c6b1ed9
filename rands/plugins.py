"""Plugins: problems and procedures registered through package entry points.

A package adds a problem that ``rands run`` finds by name by declaring, in its
``pyproject.toml``::

    [project.entry-points."rands.problems"]
    my-queue = "my_package.queue:QueueProblem"

(group ``rands.procedures`` for procedures). rands' own applications use the same
door, so the engine names no application class. Entry points are read once per
process (``refresh()`` rereads them, e.g. after installing a package at run time).
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from importlib import metadata

PROBLEMS = "rands.problems"
PROCEDURES = "rands.procedures"

__all__ = ["PROBLEMS", "PROCEDURES", "entry_point_targets", "load_target", "refresh"]


@lru_cache(maxsize=None)
def _targets(group: str) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for ep in metadata.entry_points(group=group):
        seen.setdefault(ep.name, ep.value)   # first on sys.path wins, as for imports
    return tuple(sorted(seen.items()))


def entry_point_targets(group: str) -> dict[str, str]:
    """``{name: "module:Class"}`` declared under entry-point ``group`` by installed packages."""
    return dict(_targets(group))


def refresh() -> None:
    """Forget the cached entry points (rereads installed packages on the next lookup)."""
    _targets.cache_clear()


def load_target(target: str):
    """The object named by ``"package.module:attr"``."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
