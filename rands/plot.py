"""Matplotlib views of selections and validations (no pyplot state: figures are built
with ``matplotlib.figure.Figure``, so nothing is left open in a notebook or a script).

Each single-panel function draws on ``ax`` when given, else on a new figure, and
returns the Axes (``ax.figure.savefig(path)`` writes it). :func:`plot_result` and
:func:`plot_compare` return a Figure with several panels.

- :func:`plot_samples`: samples per system (bars, or samples against estimated
  mean when k is large), the selected system marked.
- :func:`plot_means`: the leading systems' means with normal-theory intervals
  (mean +- z * sqrt(s^2 / n)), optionally next to known true means.
- :func:`plot_elimination`: systems in contention against samples used, from the
  per-stage trace.
- :func:`plot_validation`: PCS and PGS with Wilson intervals, against
  macroreplications (one validation) or against a parameter such as the budget.
- :func:`plot_compare`: several procedures side by side.

Results may be objects or the dicts of their JSON files.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import norm

from .errors import ParameterError
from .results import SelectionResult

__all__ = ["plot_samples", "plot_means", "plot_elimination", "plot_validation", "plot_compare",
           "plot_result", "new_figure"]

# trace keys that count the systems still in contention after a stage, in order of preference
_CONTENTION_KEYS = ("contention", "survivors", "alive", "remaining", "systems")
_SELECTED = "#d62728"
_OTHER = "#1f77b4"


def new_figure(width: float = 6.4, height: float = 4.0, ncols: int = 1):
    """A Figure (not registered with pyplot) and its axes."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, (axes[0] if ncols == 1 else list(axes))


def _axes(ax, width=6.4, height=4.0):
    if ax is None:
        return new_figure(width, height)[1]
    return ax


def _result(result) -> SelectionResult:
    if isinstance(result, SelectionResult):
        return result
    if isinstance(result, dict) and "sample_sizes" in result:
        return SelectionResult.from_dict(result)
    raise ParameterError(f"expected a SelectionResult or its dict, got {type(result).__name__}")


def _validation(v):
    from .validation import ValidationResult
    if isinstance(v, ValidationResult):
        return v
    if isinstance(v, dict) and "macroreps" in v:
        return ValidationResult.from_dict(v)
    raise ParameterError(f"expected a ValidationResult or its dict, got {type(v).__name__}")


def plot_samples(result, ax=None, *, max_bars: int = 80):
    """Samples taken from each system; the selected one in red.

    Up to ``max_bars`` systems: one bar per system. More: each sampled system as a
    point (estimated mean, samples) on a log scale, which shows where the effort went.
    """
    r = _result(result)
    ax = _axes(ax)
    n = np.asarray(r.sample_sizes)
    k = n.size
    if k <= max_bars:
        colors = [_SELECTED if i == r.best else _OTHER for i in range(k)]
        ax.bar(np.arange(k), n, color=colors)
        ax.set_xlabel("system")
        ax.set_ylabel("samples")
        if k <= 30:
            ax.set_xticks(np.arange(k))
    else:
        seen = n > 0
        ax.scatter(np.asarray(r.means)[seen], n[seen], s=5, alpha=0.5, color=_OTHER, label="systems")
        ax.scatter([r.means[r.best]], [n[r.best]], s=40, color=_SELECTED, label="selected", zorder=3)
        ax.set_yscale("log")
        ax.set_xlabel("estimated mean")
        ax.set_ylabel("samples (log scale)")
        ax.legend(fontsize=8)
    ax.set_title(f"{r.procedure}: {r.total_samples:,} samples over k = {k:,}")
    return ax


def plot_means(result, ax=None, *, top: int = 20, level: float = 0.95, true_means=None,
               labels: Sequence[str] | None = None):
    """Estimated means of the ``top`` systems with the largest estimates (and the selected
    one), with ``level`` normal-theory intervals where variances were recorded."""
    r = _result(result)
    if not 0 < level < 1:
        raise ParameterError(f"level must be in (0, 1), got {level!r}")
    ax = _axes(ax, 6.4, max(3.0, 0.25 * min(top, len(r.means)) + 1.2))
    means = np.asarray(r.means, dtype=float)
    n = np.asarray(r.sample_sizes)
    ranked = np.argsort(np.where(np.isfinite(means), -means, np.inf), kind="stable")
    show = [int(i) for i in ranked[:top] if np.isfinite(means[i])]
    if r.best not in show:
        show.append(int(r.best))
    show = show[::-1]                      # largest at the top
    y = np.arange(len(show))
    half = None
    if r.variances is not None:
        var = np.asarray(r.variances, dtype=float)[show]
        with np.errstate(invalid="ignore", divide="ignore"):
            half = float(norm.ppf(0.5 + level / 2)) * np.sqrt(var / n[show])
        half = np.where(np.isfinite(half), half, 0.0)
    colors = [_SELECTED if i == r.best else _OTHER for i in show]
    ax.errorbar(means[show], y, xerr=half, fmt="none", ecolor="0.5", capsize=2, zorder=1)
    ax.scatter(means[show], y, color=colors, zorder=2,
               label="estimate" + (f" ({level:.0%} interval)" if half is not None else ""))
    if true_means is not None:
        mu = np.asarray(true_means, dtype=float)
        ax.scatter(mu[show], y, marker="x", color="k", zorder=3, label="true mean")
    names = [str(labels[i]) if labels is not None else str(i) for i in show]
    if labels is None and r.best_label and r.best_label != str(r.best):
        names[show.index(r.best)] = f"{r.best}: {r.best_label}"
    ax.set_yticks(y, names, fontsize=7 if len(show) > 25 else 9)
    ax.set_xlabel("mean")
    ax.set_ylabel("system")
    ax.set_title(f"{r.procedure}: selected system {r.best}")
    ax.legend(fontsize=8)
    return ax


def elimination_curve(result) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(samples used, systems in contention, stage names), starting at (0, k): from the
    contention counts the procedure reported while running when the result has them, else
    from the per-stage trace (stages without a count carry the last one forward)."""
    r = _result(result)
    k = len(r.sample_sizes)
    xs, ys, names = [0], [k], ["start"]
    if r.contention:
        for total, count in r.contention:
            xs.append(int(total))
            ys.append(int(count))
            names.append("")
        if xs[-1] < r.total_samples:
            xs.append(int(r.total_samples))
            ys.append(ys[-1])
            names.append("end")
        return np.asarray(xs), np.asarray(ys), names
    for rec in r.trace:
        if not isinstance(rec, dict) or rec.get("total_samples") is None:
            continue
        count = next((rec[key] for key in _CONTENTION_KEYS if isinstance(rec.get(key), (int, float))
                      and not isinstance(rec.get(key), bool)), None)
        xs.append(int(rec["total_samples"]))
        ys.append(ys[-1] if count is None else int(count))
        names.append(str(rec.get("stage", "")))
    if xs[-1] < r.total_samples:
        xs.append(int(r.total_samples))
        ys.append(ys[-1])
        names.append("end")
    return np.asarray(xs), np.asarray(ys), names


def plot_elimination(result, ax=None):
    """Systems still in contention against samples used, stage by stage (from the trace)."""
    r = _result(result)
    ax = _axes(ax)
    xs, ys, names = elimination_curve(r)
    ax.step(xs, ys, where="post", color=_OTHER)
    ax.scatter(xs, ys, s=12, color=_OTHER, zorder=3)
    if len(xs) <= 12:
        for x, y, name in zip(xs[1:], ys[1:], names[1:]):
            if not name:
                continue
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(3, 4), fontsize=7)
    if ys.max() > 50 * max(ys.min(), 1):
        ax.set_yscale("log")
    ax.set_xlabel("samples used")
    ax.set_ylabel("systems in contention")
    ax.set_title(f"{r.procedure}: from {ys[0]:,} to {ys[-1]:,} systems in contention")
    return ax


def _running(flags: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from .validation import wilson_interval
    m = np.arange(1, flags.size + 1)
    hits = np.cumsum(flags.astype(np.int64))
    ci = np.array([wilson_interval(int(h), int(t), level) for h, t in zip(hits, m)])
    return hits / m, ci[:, 0], ci[:, 1]


def plot_validation(validations, ax=None, *, x: str | None = None, level: float = 0.95,
                    nominal: float | None = None):
    """PCS and PGS with Wilson ``level`` intervals.

    One validation: the running estimates against the number of macroreplications
    (needs its per-macroreplication record). Several: the estimates against ``x``, a
    procedure parameter (default ``"budget"`` when every run has one) or
    ``"mean_samples"``. ``nominal`` (e.g. 1 - alpha) is drawn as a dashed line;
    by default 1 - alpha when every validation has the same alpha.
    """
    from .validation import wilson_interval
    vs = [_validation(v) for v in (validations if isinstance(validations, (list, tuple)) else [validations])]
    if not vs:
        raise ParameterError("plot_validation needs at least one validation")
    ax = _axes(ax)
    if nominal is None:
        alphas = {v.params.get("alpha") for v in vs}
        if len(alphas) == 1 and isinstance(next(iter(alphas)), (int, float)):
            nominal = 1 - float(next(iter(alphas)))
    if len(vs) == 1 and x is None:
        v = vs[0]
        if v.correct is None:
            raise ParameterError("this validation has no per-macroreplication record; pass several "
                                 "validations with x=... instead")
        for flags, name, color in ((v.correct, "PCS", _OTHER), (v.good, "PGS", "#2ca02c")):
            if flags is None:
                continue
            est, lo, hi = _running(np.asarray(flags, dtype=bool), level)
            m = np.arange(1, est.size + 1)
            ax.plot(m, est, color=color, label=f"{name} (final {est[-1]:.3f})")
            ax.fill_between(m, lo, hi, color=color, alpha=0.2)
        ax.set_xlabel("macroreplications")
        ax.set_title(f"{v.procedure}: running estimates, {level:.0%} Wilson intervals")
    else:
        if x is None:
            x = "budget" if all("budget" in v.params for v in vs) else "mean_samples"
        xs = []
        for v in vs:
            value = v.mean_samples if x == "mean_samples" else v.params.get(x)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ParameterError(f"validation of {v.procedure!r} has no numeric {x!r}; "
                                     f"valid: mean_samples or one of {sorted(v.params)}")
            xs.append(float(value))
        order = np.argsort(xs)
        xs = np.asarray(xs)[order]
        vs = [vs[i] for i in order]
        for metric, color, shift in (("pcs", _OTHER, -0.005), ("pgs", "#2ca02c", 0.005)):
            est = np.array([getattr(v, metric) for v in vs])
            count = np.array([round(getattr(v, metric) * v.macroreps) for v in vs])
            ci = np.array([wilson_interval(int(c), v.macroreps, level) for c, v in zip(count, vs)])
            err = np.clip(np.vstack([est - ci[:, 0], ci[:, 1] - est]), 0.0, None)
            span = (xs.max() - xs.min()) or 1.0
            ax.errorbar(xs + shift * span, est, yerr=err, marker="o", capsize=3, color=color,
                        label=metric.upper())
        ax.set_xlabel("mean samples" if x == "mean_samples" else x)
        ax.set_title(f"{', '.join(sorted({v.procedure for v in vs}))}: {level:.0%} Wilson intervals")
    if nominal is not None:
        ax.axhline(nominal, ls="--", color="0.4", lw=1, label=f"nominal {nominal:g}")
    ax.set_ylabel("probability")
    ax.set_ylim(min(ax.get_ylim()[0], 0.9 if nominal else 0.0), 1.01)
    ax.legend(fontsize=8)
    return ax


def _label(item, used: dict) -> str:
    base = item.procedure
    used[base] = used.get(base, 0) + 1
    return base if used[base] == 1 else f"{base} ({used[base]})"


def plot_compare(items: Sequence, *, labels: Sequence[str] | None = None, level: float = 0.95):
    """Several procedures side by side; returns a two-panel Figure.

    Validations: PCS and PGS with Wilson intervals (left) and mean samples +- one
    standard deviation (right). Selection results: total samples (left) and wall
    time (right), each bar labelled with the system it selected.
    """
    from .validation import wilson_interval
    if not items:
        raise ParameterError("plot_compare needs at least one result")
    is_validation = isinstance(items[0], dict) and "macroreps" in items[0] or \
        type(items[0]).__name__ == "ValidationResult"
    objs = [_validation(i) for i in items] if is_validation else [_result(i) for i in items]
    used: dict = {}
    names = list(labels) if labels is not None else [_label(o, used) for o in objs]
    if len(names) != len(objs):
        raise ParameterError(f"{len(names)} labels for {len(objs)} results")
    fig, (a1, a2) = new_figure(11, 4.0, ncols=2)
    pos = np.arange(len(objs))
    if is_validation:
        w = 0.38
        for metric, color, off in (("pcs", _OTHER, -w / 2), ("pgs", "#2ca02c", w / 2)):
            est = np.array([getattr(v, metric) for v in objs])
            ci = np.array([wilson_interval(int(round(e * v.macroreps)), v.macroreps, level)
                           for e, v in zip(est, objs)])
            a1.bar(pos + off, est, w, color=color, label=metric.upper(),
                   yerr=np.clip(np.vstack([est - ci[:, 0], ci[:, 1] - est]), 0.0, None), capsize=3)
        a1.set_ylabel("probability")
        a1.set_ylim(0, 1.05)
        a1.set_title(f"PCS / PGS, {level:.0%} Wilson intervals")
        a1.legend(fontsize=8)
        a2.bar(pos, [v.mean_samples for v in objs], yerr=[v.sd_samples for v in objs], capsize=3,
               color="0.6")
        a2.set_ylabel("mean samples (+- sd)")
        a2.set_title("samples per macroreplication")
    else:
        a1.bar(pos, [r.total_samples for r in objs], color=_OTHER)
        for p, r in zip(pos, objs):
            a1.annotate(f"best {r.best}", (p, r.total_samples), ha="center", va="bottom", fontsize=8)
        a1.set_ylabel("total samples")
        a1.set_title("samples used")
        a2.bar(pos, [r.wall_time for r in objs], color="0.6")
        a2.set_ylabel("wall time (s)")
        a2.set_title("wall time")
    for a in (a1, a2):
        a.set_xticks(pos, names, rotation=20 if len(objs) > 4 else 0)
        a.set_xlabel("procedure")
    return fig


def plot_result(result, *, true_means=None):
    """Samples per system, means with intervals and elimination for one result (a Figure)."""
    r = _result(result)
    fig, axes = new_figure(15, 4.2, ncols=3)
    plot_samples(r, axes[0])
    plot_means(r, axes[1], true_means=true_means)
    plot_elimination(r, axes[2])
    return fig
