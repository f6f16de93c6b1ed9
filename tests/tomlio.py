"""TOML text for configs in the tests and in studies/faults/bad_inputs.py (tomllib reads TOML;
nothing in the standard library writes it)."""
from __future__ import annotations

import json
import math


def toml_value(v) -> str:
    """One value as TOML: booleans, numbers (nan and inf included), strings, arrays, inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, (int, str)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def render(tables: dict) -> str:
    """A document: each dict value a [table] in order; other values top-level keys (written first)."""
    out: list[str] = []
    for name, table in tables.items():
        if isinstance(table, dict):
            out.append(f"[{name}]")
            out += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        else:
            out.insert(0, f"{name} = {toml_value(table)}")
    return "\n".join(out) + "\n"
