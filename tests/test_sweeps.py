"""Sweeps: failures and divergence are recorded and the sweep goes on; launchers; resume; Optuna."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dltips.config.plan import Plan
from dltips.observe.compare import summarize

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
        "model.activation=relu,foo",
        "optimizer.lr=0.1,10000",
        "loss=mse",
        "loss.output=identity",
        f"hydra.sweep.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode != 0  # the sweep reports its failures at the end ...
    runs = statuses(out)
    assert len(runs) == 4  # ... after running every job

    def status(*parts: str) -> str:
        (name,) = [n for n in runs if all(p in n.split(",") for p in parts)]
        return runs[name]

    # Named by what the sweep varies: the constant overrides (data, loss, epochs, ...) are left out.
    assert sorted(runs) == [
        "activation=foo,lr=0.1",
        "activation=foo,lr=10000",
        "activation=relu,lr=0.1",
        "activation=relu,lr=10000",
    ]
    assert status("activation=relu", "lr=0.1") == "completed"
    assert status("activation=relu", "lr=10000") == "diverged"
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
    # Every launcher names its jobs by the swept keys alone, and the sweep's table is at its root.
    assert all(name.startswith("activation=") for name in statuses(out))
    assert (out / "hparams.tfevents").is_file() and "model.activation" in Plan.load(out).swept


@pytest.mark.slow
def test_rerun_of_a_sweep_skips_finished_jobs(tmp_path):
    out = tmp_path / "sweep"
    assert sweep("model.activation=relu,tanh", f"hydra.sweep.dir={out}", cwd=tmp_path).returncode == 0
    first = {p.name: (p / "metrics.json").stat().st_mtime_ns for p in out.iterdir() if (p / "metrics.json").exists()}
    result = sweep("model.activation=relu,tanh,sigmoid", f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "already completed, skipped" in result.stderr + result.stdout
    for name, mtime in first.items():
        assert (out / name / "metrics.json").stat().st_mtime_ns == mtime
    assert len(statuses(out)) == 3


@pytest.mark.slow
def test_optuna_search_runs_three_trials(tmp_path):
    out = tmp_path / "sweep"
    result = sweep("hparams_search=optuna", "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(statuses(out)) == 3
    assert "best_value" in (out / "optimization_results.yaml").read_text()
    # Trials are numbered (a search may propose a point twice) and carry the searched keys.
    assert sorted(name[:4] for name in statuses(out)) == ["000_", "001_", "002_"]
    assert all(",lr=" in name or "_lr=" in name for name in statuses(out))
    assert sorted(Plan.load(out).intervals) == ["optimizer.lr", "regularizer.weight_decay"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tensorboard_json(logdir: Path, route: str, body: dict | None = None, ready=bool, timeout: float = 90) -> object:
    """Serve logdir with a real `tensorboard` process and fetch one route of its HTTP data API
    (the one its UI reads), retrying until `ready(answer)` while it loads the event files."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, answer = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                data = json.dumps(body).encode() if body is not None else None
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{route}", data=data, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    answer = json.loads(response.read())
                if ready(answer):
                    return answer
            except (OSError, ValueError):
                pass  # not listening yet
            time.sleep(1)
        raise AssertionError(f"tensorboard never answered {route} as expected; last answer: {answer}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_sweep_names_jobs_and_fills_hparams_by_what_it_varies(tmp_path):
    out = tmp_path / "sweep"
    # The experiment sweeps the activation; depth and epochs are constant overrides.
    result = sweep(
        "experiment=vanishing_gradient",
        "model.activation=sigmoid,relu",
        "model.depth=3",
        f"hydra.sweep.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(statuses(out)) == ["activation=relu", "activation=sigmoid"]

    exp = tensorboard_json(
        out, "/data/plugin/hparams/experiment", {"experimentName": ""}, ready=lambda a: a.get("hparamInfos")
    )
    names = [info["name"] for info in exp["hparamInfos"]]
    assert names[0] == "model.activation" and exp["hparamInfos"][0]["differs"]
    assert [info["domainDiscrete"] for info in exp["hparamInfos"][:1]] == [["sigmoid", "relu"]]
    assert not any(info.get("differs") for info in exp["hparamInfos"][1:])
    assert "hydra" not in names and {"status", "model.depth", "experiment"} <= set(names)
    depth = next(info for info in exp["hparamInfos"] if info["name"] == "model.depth")
    assert depth["type"] == "DATA_TYPE_STRING" and depth["domainDiscrete"] == ["3"]  # an integer, not 3.000
    shown = [m["displayName"] for m in exp["metricInfos"]]
    assert shown == ["val/acc", "val/loss", "test/acc", "test/loss", "best_epoch"]

    # Each run's row holds its own value of the swept key and its status.
    groups = tensorboard_json(
        out,
        "/data/plugin/hparams/session_groups",
        {
            "experimentName": "",
            "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 100,
        },
        ready=lambda a: len(a.get("sessionGroups", [])) == 2,
    )
    rows = {g["name"]: g["hparams"] for g in groups["sessionGroups"]}
    assert {name: h["model.activation"] for name, h in rows.items()} == {
        "activation=sigmoid": "sigmoid",
        "activation=relu": "relu",
    }
    assert all(h["status"] == "completed" and h["model.depth"] == "3" for h in rows.values())


def test_runs_outside_a_sweep_get_a_table_of_what_differs_between_them(tmp_path):
    from dltips.config.validate import compose_train
    from dltips.train import train

    for activation in ("sigmoid", "relu"):
        train(compose_train([*SMALL, f"model.activation={activation}"], tmp_path / "runs" / activation))
    exp = tensorboard_json(
        tmp_path / "runs",
        "/data/plugin/hparams/experiment",
        {"experimentName": ""},
        ready=lambda a: a.get("hparamInfos"),
    )
    # No run writes a table of its own: TensorBoard's, from the runs, puts what differs first ...
    assert exp["hparamInfos"][0]["name"] == "model.activation" and exp["hparamInfos"][0]["differs"]
    assert not any(info.get("differs") for info in exp["hparamInfos"][1:])
    # ... and its first five metrics are the curves, every other tag sorting after them.
    metrics = [m["name"]["tag"] for m in exp["metricInfos"]]
    # (One short epoch: no mini-batch train/loss was logged.)
    assert metrics[:4] == ["train/acc", "train/loss_epoch", "val/acc", "val/loss"]
    assert all(m.startswith("~") for m in metrics[4:]) and "~end/test/acc" in metrics
