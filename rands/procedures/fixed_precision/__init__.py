"""Fixed-precision (indifference-zone) procedures: Rinott, KN, GSP, KT.

Each guarantees PCS >= 1-alpha (GSP: PGS >= 1-alpha1-alpha2) for normal
outputs when the best mean exceeds the others by at least delta. Constants
(Rinott h, KN eta, GSP eta) live in :mod:`.constants`.
"""
from __future__ import annotations

from .gsp import GSP
from .kn import KN
from .kt import KT
from .rinott import Rinott

__all__ = ["Rinott", "KN", "GSP", "KT"]
