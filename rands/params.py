"""Declarative parameter constraints (the shape of scikit-learn's ``_parameter_constraints``).

A table maps each parameter name to a list of constraints; a value is valid when it
satisfies at least one of them. :func:`validate_params` checks a dict of values against
a table once, before any work starts, and raises :class:`rands.errors.ParameterError`
with one line naming the owner (procedure, problem or ``[run]``), the parameter, the
value and what is valid, e.g.

    procedure 'kn': alpha must be in [1e-10, 1), got 1.5
    procedure 'kn': crn must be true or false, got 'yes'

A value of the right type that misses the range is told the range; any other value
is told the whole form (``n0 must be an integer >= 2, got 'abc'``).

Guarantees: ``bool`` never passes as a number (TOML ``true`` is not ``1``); NaN never
passes a numeric constraint; +-inf passes only an :class:`Interval` built with
``allow_inf=True``; numpy integer and floating scalars count as ints and numbers.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import ParameterError

__all__ = ["Constraint", "Interval", "Options", "Boolean", "NoneValue", "String", "Mapping_",
           "Sequence_", "Seed", "Callable_", "InstanceOf", "validate_params", "check_param",
           "describe_value", "ints", "optional", "ALPHA", "DELTA", "POSITIVE", "PROBABILITY_OPEN", "CRN",
           "NAME"]


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v: Any) -> bool:
    return isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(v, (bool, np.bool_))


def _fmt(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x) if isinstance(x, float) else str(x)


def describe_value(v: Any, limit: int = 60) -> str:
    """A short one-line repr of ``v`` for messages (long values are cut)."""
    try:
        text = repr(v)
    except Exception:  # noqa: BLE001
        text = f"<{type(v).__name__}>"
    text = text.replace("\n", " ")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class Constraint:
    """One allowed form of a parameter value."""

    def is_satisfied_by(self, value: Any) -> bool:
        raise NotImplementedError

    def __str__(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self}>"


class Interval(Constraint):
    """An int (``kind=int``) or real number (``kind=float``) in [low, high] with open/closed ends.

    ``closed``: "both", "left", "right" or "neither"; ``None`` bounds are unbounded.
    Real intervals refuse NaN always and +-inf unless ``allow_inf``.
    """

    def __init__(self, kind: type, low: float | None, high: float | None, *, closed: str = "both",
                 allow_inf: bool = False) -> None:
        if kind not in (int, float):
            raise TypeError("Interval kind must be int or float")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be both/left/right/neither, got {closed!r}")
        self.kind, self.low, self.high, self.closed, self.allow_inf = kind, low, high, closed, allow_inf

    def is_satisfied_by(self, value: Any) -> bool:
        if self.kind is int:
            if not _is_int(value):
                return False
        else:
            if not _is_real(value):
                return False
        try:
            v = float(value) if self.kind is float else int(value)
        except (OverflowError, ValueError):
            return False
        if self.kind is float:
            if math.isnan(v) or (math.isinf(v) and not self.allow_inf):
                return False
        left_closed = self.closed in ("both", "left")
        right_closed = self.closed in ("both", "right")
        if self.low is not None and (v < self.low or (v == self.low and not left_closed)):
            return False
        if self.high is not None and (v > self.high or (v == self.high and not right_closed)):
            return False
        return True

    def type_ok(self, value: Any) -> bool:
        """Right type (and finite where required): a refusal is then about the range."""
        if self.kind is int:
            return _is_int(value)
        if not _is_real(value):
            return False
        try:
            v = float(value)
        except OverflowError:
            return False
        return not math.isnan(v) and (self.allow_inf or not math.isinf(v))

    def range_str(self) -> str:
        lo = "-inf" if self.low is None else _fmt(self.low)
        hi = "inf" if self.high is None else _fmt(self.high)
        lb = "[" if self.closed in ("both", "left") and self.low is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        if self.kind is int and self.high is None and self.low is not None:
            return f">= {_fmt(self.low) if lb == '[' else _fmt(self.low + 1)}"
        if self.kind is int and self.low is None and self.high is not None:
            return f"<= {_fmt(self.high) if rb == ']' else _fmt(self.high - 1)}"
        return f"in {lb}{lo}, {hi}{rb}"

    def __str__(self) -> str:
        if self.kind is int:
            return "an integer" + ("" if self.low is None and self.high is None else " " + self.range_str())
        fin = "a number" if self.allow_inf or (self.low is not None and self.high is not None) else "a finite number"
        return f"{fin} {self.range_str()}"


class Options(Constraint):
    """One of a fixed set of values (compared by equality and type)."""

    def __init__(self, options: Iterable[Any]) -> None:
        self.options = tuple(options)

    def is_satisfied_by(self, value: Any) -> bool:
        return any(type(value) is type(o) and value == o for o in self.options)

    def __str__(self) -> str:
        opts = [repr(o) for o in self.options]
        return opts[0] if len(opts) == 1 else ", ".join(opts[:-1]) + " or " + opts[-1]


class Boolean(Constraint):
    """``True`` or ``False`` (numpy bools too; never 0/1 or strings)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def __str__(self) -> str:
        return "true or false"


class NoneValue(Constraint):
    """``None`` (in a TOML file: leave the key out)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None (omit the key)"


class String(Constraint):
    """A non-empty string (a path or a name), optionally at most ``max_len`` characters."""

    def __init__(self, what: str = "a non-empty string", max_len: int = 4096) -> None:
        self.what, self.max_len = what, max_len

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and 0 < len(value) <= self.max_len and "\x00" not in value

    def __str__(self) -> str:
        return self.what


class Mapping_(Constraint):
    """A dict with string keys."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)

    def __str__(self) -> str:
        return "a table of parameters (dict)"


class Sequence_(Constraint):
    """A 1-D sequence (list, tuple or array) of ``element`` values, at least ``min_len`` long."""

    def __init__(self, element: Constraint, min_len: int = 1, what: str | None = None) -> None:
        self.element, self.min_len, self.what = element, min_len, what

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, np.ndarray):
            if value.ndim != 1:
                return False
            arr = value
        elif isinstance(value, (list, tuple)):
            if not isinstance(self.element, Interval):
                return len(value) >= self.min_len and all(self.element.is_satisfied_by(v) for v in value)
            if any(isinstance(v, (bool, np.bool_)) for v in value):
                return False
            try:
                arr = np.asarray(value)
            except (ValueError, TypeError, OverflowError):
                return False
            if arr.ndim != 1:
                return False
        else:
            return False
        if arr.shape[0] < self.min_len:
            return False
        el = self.element
        if not isinstance(el, Interval) or arr.dtype.kind not in "iuf":
            return all(el.is_satisfied_by(v) for v in arr.tolist())
        if el.kind is int and arr.dtype.kind == "f":
            return False
        with np.errstate(invalid="ignore"):
            if arr.dtype.kind == "f" and (np.isnan(arr).any() or (not el.allow_inf and np.isinf(arr).any())):
                return False
            lo_ok = el.closed in ("both", "left")
            hi_ok = el.closed in ("both", "right")
            if el.low is not None and ((arr < el.low).any() or (not lo_ok and (arr == el.low).any())):
                return False
            if el.high is not None and ((arr > el.high).any() or (not hi_ok and (arr == el.high).any())):
                return False
        return True

    def __str__(self) -> str:
        if self.what:
            return self.what
        return f"a list of at least {self.min_len} values, each {self.element}"


class Seed(Constraint):
    """A seed: an integer >= 0, or a non-empty list of integers >= 0 (SeedSequence entropy)."""

    def is_satisfied_by(self, value: Any) -> bool:
        if _is_int(value):
            return int(value) >= 0
        if isinstance(value, (list, tuple)) and value:
            return all(_is_int(v) and int(v) >= 0 for v in value)
        return False

    def __str__(self) -> str:
        return "an integer >= 0 or a non-empty list of integers >= 0"


class Callable_(Constraint):
    """A callable."""

    def is_satisfied_by(self, value: Any) -> bool:
        return callable(value)

    def __str__(self) -> str:
        return "a callable"


class InstanceOf(Constraint):
    """An instance of ``cls`` (described as ``what``)."""

    def __init__(self, cls: type | tuple, what: str) -> None:
        self.cls, self.what = cls, what

    def is_satisfied_by(self, value: Any) -> bool:
        classes = self.cls if isinstance(self.cls, tuple) else (self.cls,)
        if isinstance(value, (bool, np.bool_)) and not any(c in (bool, np.bool_) for c in classes):
            return False
        return isinstance(value, classes)

    def __str__(self) -> str:
        return self.what


def check_param(owner: str, name: str, value: Any, constraints: Sequence[Constraint]) -> None:
    """Raise ParameterError unless ``value`` satisfies one of ``constraints``."""
    if any(c.is_satisfied_by(value) for c in constraints):
        return
    # a value of the right type is told the range it missed; otherwise the full form
    parts = [c.range_str() if hasattr(c, "type_ok") and c.type_ok(value) else str(c) for c in constraints]
    raise ParameterError(f"{owner}: {name} must be {' or '.join(parts)}, got {describe_value(value)}")


def validate_params(constraints: Mapping[str, Sequence[Constraint] | str], params: Mapping[str, Any],
                    owner: str, *, unknown: bool = True) -> None:
    """Check ``params`` against a constraints table; the first violation raises.

    ``constraints[name]`` is a list of :class:`Constraint` (any one suffices) or the
    string ``"no_validation"``. With ``unknown=True`` a parameter missing from the
    table is refused (naming the valid ones).
    """
    if unknown:
        extra = sorted(set(params) - set(constraints))
        if extra:
            raise ParameterError(f"{owner}: unknown parameter(s) {extra}; valid: {sorted(constraints)}")
    for name, value in params.items():
        spec = constraints.get(name)
        if spec is None or spec == "no_validation":
            continue
        check_param(owner, name, value, spec)


# ------------------------------------------------------------------ shared entries
def ints(low: int, high: int | None = None) -> list[Constraint]:
    """[an integer in [low, high]] (high None: unbounded)."""
    return [Interval(int, low, high)]


def optional(constraints: list[Constraint]) -> list[Constraint]:
    return [*constraints, NoneValue()]


#: error probabilities: below 1e-10 the constants (h, eta) grow without a useful bound and
#: 1 - alpha rounds to 1 in floating point near 1e-16
ALPHA = [Interval(float, 1e-10, 1.0, closed="left")]
#: indifference-zone parameter: finite (inf would stop screening at once) and at least 1e-150,
#: so that delta**2 (every IZ procedure divides by it) is a normal double, not 0: with
#: delta = 1e-300, KN divided by zero and stopped after its first stage without a guarantee
DELTA = [Interval(float, 1e-150, None)]
POSITIVE = [Interval(float, 0.0, None, closed="neither")]
#: the hang guard, seconds per simulate call: 1 ms (a shorter timer is not armed reliably) to 10^7 s
SIM_TIMEOUT = [Interval(float, 1e-3, 1e7)]
PROBABILITY_OPEN = [Interval(float, 0.0, 1.0, closed="neither")]
CRN = [Boolean()]
NAME = [String("a procedure name")]

