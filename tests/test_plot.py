"""rands.plot: image files written, axes labelled, the numbers drawn are the result's, no pyplot state."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from scipy.stats import norm

import rands
from rands import plot
from rands.errors import ParameterError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def kn_result():
    return rands.select("slippage", "kn", seed=1, problem_params={"k": 12, "delta": 0.5},
                        alpha=0.05, delta=0.5, n0=10)


@pytest.fixture(scope="module")
def validations():
    kt = rands.validate("slippage", "kt", macroreps=40, seed=0, problem_params={"k": 8},
                        alpha=0.05, delta=0.5, n0=10, g=4, n_groups=2)
    ocba = [rands.validate("slippage", "ocba", macroreps=30, seed=0, problem_params={"k": 8},
                           budget=b, n0=5) for b in (80, 160, 320)]
    return kt, ocba


def _written(ax_or_fig, path):
    fig = getattr(ax_or_fig, "figure", ax_or_fig)
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000
    return fig


def _labelled(ax):
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def _no_pyplot_figures():
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_plot_samples_bars_are_the_sample_sizes(kn_result, tmp_path):
    ax = plot.plot_samples(kn_result)
    _written(ax, tmp_path / "samples.png")
    _labelled(ax)
    heights = [p.get_height() for p in ax.patches]
    assert heights == [int(n) for n in kn_result.sample_sizes]
    red = [i for i, p in enumerate(ax.patches) if p.get_facecolor()[0] > 0.8]
    assert red == [kn_result.best]
    _no_pyplot_figures()


def test_plot_samples_many_systems_scatter(tmp_path):
    r = rands.select("slippage", "ocba", seed=2, problem_params={"k": 200}, budget=4000, n0=5)
    ax = plot.plot_samples(r)
    _written(ax, tmp_path / "many.png")
    _labelled(ax)
    assert ax.get_yscale() == "log" and "mean" in ax.get_xlabel()


def test_plot_means_interval_half_widths(kn_result, tmp_path):
    ax = plot.plot_means(kn_result, top=5, level=0.9, true_means=np.r_[0.5, np.zeros(11)])
    _written(ax, tmp_path / "means.png")
    _labelled(ax)
    container = ax.containers[0]                       # the errorbar container
    segs = container.lines[2][0].get_segments()
    half = np.array([abs(s[1][0] - s[0][0]) / 2 for s in segs])
    m = kn_result.means
    top = np.argsort(-m)[:5][::-1]
    expect = norm.ppf(0.95) * np.sqrt(kn_result.variances[top] / kn_result.sample_sizes[top])
    assert np.allclose(half, expect)
    assert [t.get_text().split(":")[0] for t in ax.get_yticklabels()] == [str(i) for i in top]
    with pytest.raises(ParameterError, match="level must be in"):
        plot.plot_means(kn_result, level=1.5)


def test_elimination_curve_from_contention(kn_result, tmp_path):
    xs, ys, _ = plot.elimination_curve(kn_result)
    assert xs[0] == 0 and ys[0] == 12 and ys[-1] == 1
    assert xs[-1] == kn_result.total_samples
    assert np.all(np.diff(xs) >= 0) and np.all(np.diff(ys) <= 0)
    ax = plot.plot_elimination(kn_result)
    _written(ax, tmp_path / "elim.png")
    _labelled(ax)
    assert ax.get_ylabel() == "systems in contention"


def test_elimination_curve_from_trace_only():
    d = {"best": 0, "total_samples": 300, "sample_sizes": [100, 100, 100], "means": [1, 0, 0],
         "wall_time": 0.1, "procedure": "x", "params": {}, "seed": 0,
         "trace": [{"stage": "a", "total_samples": 120, "survivors": 2},
                   {"stage": "b", "total_samples": 200}, {"stage": "c", "total_samples": 300, "survivors": 1}]}
    xs, ys, names = plot.elimination_curve(d)
    assert xs.tolist() == [0, 120, 200, 300] and ys.tolist() == [3, 2, 2, 1]
    assert names == ["start", "a", "b", "c"]


def test_plot_validation_running_and_against_budget(validations, tmp_path):
    kt, ocba = validations
    ax = plot.plot_validation(kt)
    _written(ax, tmp_path / "running.png")
    _labelled(ax)
    pcs_line = ax.get_lines()[0]
    y = pcs_line.get_ydata()
    assert len(y) == kt.macroreps and y[-1] == pytest.approx(kt.pcs)
    assert any(l.get_ydata()[0] == pytest.approx(0.95) for l in ax.get_lines()[2:])  # nominal
    ax = plot.plot_validation(ocba)
    _written(ax, tmp_path / "budget.png")
    assert ax.get_xlabel() == "budget"
    xs = ax.containers[0].lines[0].get_xdata()
    assert np.allclose(np.round(xs, -1), [80, 160, 320], atol=10)
    # JSON dicts work as well as objects
    ax = plot.plot_validation([json.loads(json.dumps(v.to_dict())) for v in ocba], x="mean_samples")
    assert ax.get_xlabel() == "mean samples"
    with pytest.raises(ParameterError, match="no numeric 'nope'"):
        plot.plot_validation(ocba, x="nope")


def test_plot_compare_validations_and_results(validations, kn_result, tmp_path):
    kt, ocba = validations
    fig = plot.plot_compare([kt, ocba[-1]])
    _written(fig, tmp_path / "compare.png")
    a1, a2 = fig.axes
    _labelled(a1)
    _labelled(a2)
    pcs_bars = [p.get_height() for p in a1.patches[:2]]
    assert pcs_bars == pytest.approx([kt.pcs, ocba[-1].pcs])
    assert [t.get_text() for t in a1.get_xticklabels()] == ["kt", "ocba"]
    r2 = rands.select("slippage", "ocba", seed=1, problem_params={"k": 12}, budget=600)
    fig = plot.plot_compare([kn_result, r2.to_dict()])
    _written(fig, tmp_path / "compare_results.png")
    assert [p.get_height() for p in fig.axes[0].patches] == [kn_result.total_samples, 600]
    _no_pyplot_figures()


def test_plot_result_three_panels(kn_result, tmp_path):
    fig = plot.plot_result(json.loads(kn_result.to_json()))
    _written(fig, tmp_path / "result.png")
    assert len(fig.axes) == 3
    for ax in fig.axes:
        _labelled(ax)


def test_to_frame_selection_and_validation(kn_result, validations):
    pd = pytest.importorskip("pandas")
    f = kn_result.to_frame()
    assert isinstance(f, pd.DataFrame) and len(f) == 12 and f.index.name == "system"
    assert f["samples"].tolist() == kn_result.sample_sizes.tolist()
    assert f["selected"].sum() == 1 and bool(f["selected"].iloc[kn_result.best])
    se = np.sqrt(kn_result.variances / kn_result.sample_sizes)
    assert np.allclose(f["std_error"], se)
    kt, ocba = validations
    g = kt.to_frame()
    assert len(g) == kt.macroreps and g["correct"].mean() == pytest.approx(kt.pcs)
    summary = pd.concat([v.to_frame(summary=True) for v in ocba], ignore_index=True)
    assert summary["param_budget"].tolist() == [80, 160, 320]
    assert (summary["pcs_low"] <= summary["pcs"]).all() and (summary["pcs"] <= summary["pcs_high"]).all()


def test_public_numbers_are_plain(validations, kn_result):
    kt, _ = validations
    assert all(type(x) is float for x in kt.pcs_ci) and "np.float64" not in repr(kt.pcs_ci)
    assert "np." not in repr(kn_result.extras) and "np." not in repr(kn_result.trace)
