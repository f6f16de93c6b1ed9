"""``rands report``: one self-contained HTML page for a selection or validation result.

The page holds the summary (procedure, guarantee, selection, samples, time), the
parameters, the problem, the leading systems, the trace and the plots of
:mod:`rands.plot` embedded as base64 PNG, with no external file, script or style
sheet, so it can be mailed or archived as it is. Several results on one page
also get the side-by-side comparison.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import plot
from .errors import ParameterError
from .results import SelectionResult

__all__ = ["load_result", "render_report", "write_report", "figure_png"]

_STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.guarantee { background: #f4f8ff; border-left: 4px solid #1f77b4; padding: 0.5em 1em; }
"""


def load_result(source):
    """A SelectionResult or ValidationResult from an object, a dict or a JSON file path."""
    from .validation import ValidationResult
    if isinstance(source, (SelectionResult, ValidationResult)):
        return source
    d = source
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.is_file():
            raise ParameterError(f"result file {str(p)!r} does not exist")
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ParameterError(f"result file {str(p)!r} is not valid JSON: {exc}") from None
    if isinstance(d, dict) and "sample_sizes" in d and "best" in d:
        return SelectionResult.from_dict(d)
    if isinstance(d, dict) and "macroreps" in d and "pcs" in d:
        return ValidationResult.from_dict(d)
    raise ParameterError(f"{source!r} is neither a selection result (best, sample_sizes, ...) "
                         "nor a validation result (macroreps, pcs, ...)")


def figure_png(fig) -> str:
    """A Figure (or Axes) as a base64 PNG string."""
    fig = getattr(fig, "figure", fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(fig, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{figure_png(fig)}">'


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return html.escape(str(v))
    if isinstance(v, float):
        return "nan" if not math.isfinite(v) else f"{v:.6g}"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (list, tuple)) and len(v) > 12:
        return html.escape(f"[{', '.join(map(str, v[:6]))}, ... ({len(v)} items)]")
    if isinstance(v, dict):
        return html.escape(json.dumps(v, default=str)[:400])
    return html.escape(str(v))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = []
        for v in row:
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            cells.append(f'<td class="num">{_fmt(v)}</td>' if num else f"<td>{_fmt(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _kv(d: dict) -> str:
    return _table([(k, v) for k, v in d.items()], ["name", "value"])


def _selection_section(r: SelectionResult, title: str, top: int) -> list[str]:
    means = np.asarray(r.means, dtype=float)
    n = np.asarray(r.sample_sizes)
    parts = [f"<h2>{html.escape(title)}</h2>",
             f'<p class="guarantee"><b>Guarantee:</b> {html.escape(r.guarantee or "not stated")}</p>',
             _table([("procedure", r.procedure), ("selected system", r.best),
                     ("selected label", r.best_label), ("estimated mean of the selection", r.best_mean),
                     ("samples of the selection", int(n[r.best])), ("total samples", r.total_samples),
                     *([("samples simulated (drawn ahead included)", int(r.samples_simulated))]
                       if getattr(r, "samples_simulated", None) not in (None, r.total_samples) else []),
                     ("systems", int(n.size)), ("wall time (s)", r.wall_time), ("seed", r.seed)],
                    ["", ""]),
             "<h3>Parameters</h3>", _kv(r.params),
             "<h3>Problem</h3>", _kv(r.problem) if r.problem else "<p>not recorded</p>",
             "<h3>Plots</h3>",
             _img(plot.plot_samples(r), "samples per system"),
             _img(plot.plot_means(r, top=min(top, 30)), "means with intervals"),
             _img(plot.plot_elimination(r), "systems in contention against samples")]
    order = np.argsort(np.where(np.isfinite(means), -means, np.inf), kind="stable")[:top]
    var = None if r.variances is None else np.asarray(r.variances, dtype=float)
    rows = []
    for i in order:
        se = float("nan") if var is None or n[i] < 2 else float(np.sqrt(var[i] / n[i]))
        rows.append((int(i), float(means[i]), se, int(n[i]), "selected" if i == r.best else ""))
    parts += [f"<h3>Leading systems (top {len(rows)} by estimated mean)</h3>",
              _table(rows, ["system", "mean", "std. error", "samples", ""])]
    if r.trace:
        keys = list(dict.fromkeys(k for rec in r.trace[:200] for k in rec))
        parts += [f"<h3>Trace ({len(r.trace)} records)</h3>",
                  _table([[rec.get(k, "") for k in keys] for rec in r.trace[:200]], keys)]
    if r.accounting:
        parts += ["<h3>Accounting</h3>", _kv(r.accounting)]
    if r.extras:
        parts += ["<h3>Procedure outputs</h3>", _kv(r.extras)]
    return parts


def _validation_section(v, title: str) -> list[str]:
    parts = [f"<h2>{html.escape(title)}</h2>",
             _table([("procedure", v.procedure), ("macroreplications", v.macroreps),
                     ("PCS", v.pcs), ("PCS 95% Wilson interval", f"[{v.pcs_ci[0]:.4f}, {v.pcs_ci[1]:.4f}]"),
                     ("PGS (delta = %g)" % v.delta, v.pgs),
                     ("PGS 95% Wilson interval", f"[{v.pgs_ci[0]:.4f}, {v.pgs_ci[1]:.4f}]"),
                     ("mean samples", v.mean_samples), ("sd of samples", v.sd_samples),
                     ("mean wall time (s)", v.mean_wall_time)], ["", ""]),
             "<h3>Parameters</h3>", _kv(v.params), "<h3>Problem</h3>", _kv(v.problem)]
    if v.correct is not None:
        parts += ["<h3>Plots</h3>", _img(plot.plot_validation(v), "running PCS and PGS")]
    return parts


def render_report(results, *, title: str | None = None, top: int = 20) -> str:
    """The HTML page (a string) for one result or several (objects, dicts or JSON paths)."""
    items = results if isinstance(results, (list, tuple)) else [results]
    if not items:
        raise ParameterError("a report needs at least one result")
    loaded = [load_result(x) for x in items]
    names = [str(x) if isinstance(x, (str, Path)) else f"result {i + 1}" for i, x in enumerate(items)]
    title = title or ("rands report: " + ", ".join(sorted({o.procedure for o in loaded})))
    body = [f"<h1>{html.escape(title)}</h1>"]
    kinds = {type(o).__name__ for o in loaded}
    if len(loaded) > 1 and len(kinds) == 1:
        body += ["<h2>Side by side</h2>", _img(plot.plot_compare(loaded), "procedures side by side")]
    for obj, name in zip(loaded, names):
        label = f"{obj.procedure} — {name}"
        if isinstance(obj, SelectionResult):
            body += _selection_section(obj, label, top)
        else:
            body += _validation_section(obj, label)
    from . import __version__
    body.append(f"<p><small>rands {html.escape(__version__)}</small></p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_report(results, output, **kw) -> Path:
    """Write :func:`render_report` to ``output`` (its folder is created); returns the path."""
    out = Path(output)
    try:                                   # the folder is checked before any plotting
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"cannot write the report to {str(out)!r}: {exc.strerror}") from None
    if out.is_dir() or not os.access(out.parent, os.W_OK):
        raise ParameterError(f"cannot write the report to {str(out)!r}: not a writable file path")
    page = render_report(results, **kw)
    out.write_text(page, encoding="utf-8")
    return out
