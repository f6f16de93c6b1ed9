"""CI smoke test of the RLR study: every stage at tiny sizes (well under 3 minutes on one core)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.torch

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "rlr" / "rlr_study.py"


def test_study_smoke(tmp_path):
    out = tmp_path / "rlr"
    proc = subprocess.run([sys.executable, str(SCRIPT), "all", "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    A = json.loads((out / "expA.json").read_text())["estimators"]
    assert A["full_bp"]["coverage"] == "unbiased" and A["draft_1"]["coverage"].startswith("biased")
    assert all(v["tr_cov"] >= 0 and v["cost_units"] > 0 for v in A.values())
    B = json.loads((out / "expB.json").read_text())
    assert "full_bp|logp" in B["summary"] and "rlr_h2_nofo|hit" in B["summary"]
    S = json.loads((out / "select.json").read_text())
    assert S["procedures"]["equal"]["best_label"] in S["systems"]
    assert (out / "expA.png").exists() and (out / "expB.png").exists()
