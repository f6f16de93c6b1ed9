"""`rands report`: one self-contained HTML page, checked by parsing it."""
from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import pytest

import rands
from rands.cli import main
from rands.demo import run_demo

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Collects tags, attributes and text of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.images, self.text, self.stack = [], [], [], []
        self.title = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        self.stack.append(tag)
        if tag == "img":
            self.images.append(a)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "title":
            self.title += data
        self.text.append(data)

    @property
    def body(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(path) -> Page:
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


def check_self_contained(page: Page, n_images: int) -> None:
    assert len(page.images) >= n_images
    for img in page.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG) and len(data) > 5000
        assert img.get("alt")
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object")
        for key in ("src", "href"):
            assert not attrs.get(key, "data:").split(":")[0] in ("http", "https", "file")


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert run_demo(output=str(out), seed=1, quick=True) == 0
    return out / "result.json"


def test_report_on_the_demo_result(demo_result, tmp_path, capsys):
    html_path = tmp_path / "report.html"
    assert main(["report", str(demo_result), "-o", str(html_path)]) == 0
    page = parse(html_path)
    check_self_contained(page, 3)
    d = json.loads(demo_result.read_text())
    body = page.body
    assert page.title.startswith("rands report") and "kt" in page.title
    assert f"{d['total_samples']:,}" in body                       # samples
    assert d["guarantee"] in body                                   # guarantee
    assert d["best_label"] in body and "selected system" in body    # the selection
    for key in ("alpha", "delta", "n0", "crn"):                     # parameters
        assert key in body
    assert "wall time (s)" in body and f"{d['wall_time']:.6g}" in body   # time
    assert "flowline" in body                                       # problem
    alts = [a["alt"] for a in page.images]
    assert alts[:3] == ["samples per system", "means with intervals",
                        "systems in contention against samples"]
    assert "wrote" in capsys.readouterr().err


def test_report_validation_and_side_by_side(tmp_path):
    v = rands.validate("slippage", "kt", macroreps=20, seed=0, problem_params={"k": 6},
                       alpha=0.05, delta=0.5, n0=10, g=3, n_groups=2)
    r1 = rands.select("slippage", "kn", seed=1, problem_params={"k": 6}, alpha=0.05, delta=0.5, n0=10)
    r2 = rands.select("slippage", "ocba", seed=1, problem_params={"k": 6}, budget=300)
    paths = []
    for name, obj in (("v", v), ("r1", r1), ("r2", r2)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(obj.to_dict()))
        paths.append(p)
    out = tmp_path / "v.html"
    assert main(["report", str(paths[0]), "-o", str(out)]) == 0
    page = parse(out)
    check_self_contained(page, 1)
    assert "PCS 95% Wilson interval" in page.body and f"{v.pcs_ci[0]:.4f}" in page.body
    out2 = tmp_path / "two.html"
    assert main(["report", str(paths[1]), str(paths[2]), "-o", str(out2), "--title", "two runs"]) == 0
    page = parse(out2)
    check_self_contained(page, 7)
    assert page.title == "two runs" and page.images[0]["alt"] == "procedures side by side"


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.json"), "-o", str(tmp_path / "a.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    assert main(["report", str(bad), "-o", str(tmp_path / "a.html")]) == 2
    assert "neither a selection result" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = rands.select("slippage", "ocba", seed=1, problem_params={"k": 4}, budget=100)
    good = tmp_path / "r.json"
    good.write_text(r.to_json())
    assert main(["report", str(good), "-o", str(blocker / "sub" / "a.html")]) == 2
    assert "cannot write the report" in capsys.readouterr().err
