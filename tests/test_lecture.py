"""The lecture reproduction: a study runs, decides by its rule, and lands in REPORT.md."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dltips.lecture import STUDIES, reproduce
from dltips.lecture.lab import Lab, mean_std, table

REPO = Path(__file__).resolve().parents[1]


def test_every_claim_of_the_lecture_has_a_study():
    assert set(STUDIES) == {
        "vanishing_gradient", "activations", "cost", "normalization", "optimizers", "overfitting", "dropout_ensemble",
    }


def test_mean_std_and_table():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)  # sample std, as over seeds
    assert mean_std([5.0]) == (5.0, 0.0)
    assert table(["a", "b"], [[1, 2]]).splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_a_study_writes_its_section_figure_and_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(Lab, "epochs", lambda self, full: 1)
    report = reproduce(tmp_path, quick=True, only=["cost"])
    text = report.read_text()
    assert "## Softmax + cross-entropy learns faster than the quadratic cost" in text
    assert "**Rule.**" in text and ("**Verdict: held**" in text or "**Verdict: did not hold**" in text)
    assert (tmp_path / "figures" / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = list((tmp_path / "runs").glob("*/cost/*"))
    assert sorted(p.name for p in runs) == ["cross_entropy,seed=0", "mse,seed=0"]


@pytest.mark.slow
def test_quick_reproduction_runs_every_study(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "reproduce_lecture.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "REPORT.md").read_text()
    assert text.count("\n## ") == len(STUDIES) + 1  # dropout_ensemble reports two claims
    assert "tensorboard --logdir" in result.stdout
