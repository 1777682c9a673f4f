"""metrics.json has one owner, dltips.run.report: what it writes reads back, a file it cannot
parse is reported as such (never a traceback), and it loads without torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from dltips.run import report


def test_a_report_reads_back_with_missing_metrics_as_none(tmp_path):
    written = report.write(tmp_path, report.DIVERGED, "loss became nan", {"val/acc": math.nan, "epochs": 3}, time_s=1.5)
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == {"val/acc": None, "epochs": 3}
    read = report.read(tmp_path)
    assert read["status"] == written["status"] == "diverged" and read["message"] == "loss became nan"
    assert read["time_s"] == 1.5 and math.isnan(report.objective(read))
    assert report.finished(tmp_path) == read


def test_only_finished_runs_count_as_finished(tmp_path):
    assert report.read(tmp_path) is None and report.finished(tmp_path) is None
    report.write(tmp_path, report.INTERRUPTED, "SIGINT at step 3")
    assert report.read(tmp_path)["status"] == "interrupted" and report.finished(tmp_path) is None
    report.write(tmp_path, report.COMPLETED, metrics={"val/acc": 0.9})
    assert report.objective(report.finished(tmp_path)) == 0.9


@pytest.mark.parametrize("text", ['{"status": "compl', "[1, 2]", '{"metrics": {}}', ""])
def test_a_file_it_cannot_parse_reads_as_unreadable(tmp_path, text):
    (tmp_path / "metrics.json").write_text(text)
    read = report.read(tmp_path)
    assert read["status"] == report.UNREADABLE and str(tmp_path / "metrics.json") in read["message"]
    assert report.finished(tmp_path) is None  # a sweep re-run trains it again


def test_an_unknown_status_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="Invalid status: 'done'; allowed: completed, diverged"):
        report.write(tmp_path, "done")
    assert not (tmp_path / "metrics.json").exists()


def test_dltips_compare_lists_a_truncated_report_instead_of_failing(tmp_path):
    from dltips.observe.compare import load_run

    (tmp_path / "metrics.json").write_text('{"status": "completed", "metr')
    row = load_run(tmp_path)
    assert row["status"] == report.UNREADABLE and "cannot be read" in row["message"]


def test_it_loads_without_torch():
    code = "import sys, dltips.run.report, dltips.launch.slurm; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
