"""Sweeps: failures and divergence are recorded and the sweep goes on; launchers; resume; Optuna."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dltips.compare import summarize

SMALL = ["data=synthetic", "data.source.n_samples=300", "trainer.max_epochs=1", "trainer.progress=log"]


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dltips.train", "-m", *args, *SMALL],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def statuses(sweep_dir: Path) -> dict[str, str]:
    return {
        p.name: json.loads((p / "metrics.json").read_text())["status"]
        for p in sweep_dir.iterdir()
        if (p / "metrics.json").is_file()
    }


def test_failing_and_diverging_jobs_do_not_stop_the_sweep(tmp_path):
    out = tmp_path / "sweep"
    # relu trains; foo is rejected (the job raises); lr=1e4 with an unbounded output diverges.
    result = sweep(
        "model.activation=relu,foo", "optimizer.lr=0.1,10000", "loss=mse", "loss.output=identity",
        f"hydra.sweep.dir={out}", cwd=tmp_path,
    )
    assert result.returncode != 0  # the sweep reports its failures at the end ...
    runs = statuses(out)
    assert len(runs) == 4  # ... after running every job

    def status(*parts: str) -> str:
        (name,) = [n for n in runs if all(p in n.split(",") for p in parts)]
        return runs[name]

    assert status("model.activation=relu", "optimizer.lr=0.1") == "completed"
    assert status("model.activation=relu", "optimizer.lr=10000") == "diverged"
    failed = [name for name, status in runs.items() if status == "failed"]
    assert len(failed) == 2 and all("activation=foo" in name for name in failed)
    assert "model.activation: 'foo'" in (out / failed[0] / "error.txt").read_text()
    summary = (out / "summary.md").read_text()
    assert summary.count("| failed |") == 2 and "| diverged |" in summary
    assert "2 of 4 jobs failed" in result.stderr + result.stdout


LAUNCHERS = {
    "joblib: 4 jobs in parallel processes": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1"], 4),
    "submitit_local: 2 jobs": (["hydra/launcher=submitit_local"], 2),
}


@pytest.mark.slow
@pytest.mark.parametrize("overrides, jobs", LAUNCHERS.values(), ids=LAUNCHERS.keys())
def test_launcher_runs_every_job(overrides, jobs, tmp_path):
    out = tmp_path / "sweep"
    result = sweep(*overrides, "model.activation=relu,tanh", f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(statuses(out).values()) == ["completed"] * jobs
    assert len(summarize(out)) == jobs


@pytest.mark.slow
def test_rerun_of_a_sweep_skips_finished_jobs(tmp_path):
    out = tmp_path / "sweep"
    assert sweep("model.activation=relu", f"hydra.sweep.dir={out}", cwd=tmp_path).returncode == 0
    first = {p.name: (p / "metrics.json").stat().st_mtime_ns for p in out.iterdir() if (p / "metrics.json").exists()}
    result = sweep("model.activation=relu,tanh", f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "already completed, skipped" in result.stderr + result.stdout
    for name, mtime in first.items():
        assert (out / name / "metrics.json").stat().st_mtime_ns == mtime
    assert len(statuses(out)) == 2


@pytest.mark.slow
def test_optuna_search_runs_three_trials(tmp_path):
    out = tmp_path / "sweep"
    result = sweep("hparams_search=optuna", "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(statuses(out)) == 3
    assert "best_value" in (out / "optimization_results.yaml").read_text()
