"""Sweeps: failures and divergence are recorded and the sweep goes on; launchers; resume; Optuna."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
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
    # No figures unless asked for (hydra.callbacks.summary.figures): the summary says how to draw them.
    assert not (out / "curves.png").exists() and f"`dltips-compare {out}` draws the curves" in summary


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
    # Every launcher names its jobs by the swept keys alone, and each job's run carries the
    # sweep's table and its setting's group (no run of its own at the sweep's root).
    from tests.test_train import read_events

    assert all(name.startswith("activation=") for name in statuses(out))
    assert "model.activation" in Plan.load(out).swept and not list(out.glob("*tfevents*"))
    for name in statuses(out):
        tags = read_events(out / name).PluginTagToContent("hparams")
        assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(tags)


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


def serving_port(server: subprocess.Popen, said: list[str], timeout: float) -> int:
    """The port in tensorboard's "TensorBoard <version> at http://127.0.0.1:<port>/" line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r" at http://127\.0\.0\.1:(\d+)/", "".join(said))
        if found:
            return int(found.group(1))
        if server.poll() is not None:
            time.sleep(0.5)  # what it said last, read
            break
        time.sleep(0.1)
    raise AssertionError(f"tensorboard did not say where it serves:\n{''.join(said)[-3000:]}")


@contextlib.contextmanager
def tensorboard(logdir: Path, timeout: float = 90):
    """Serve logdir with a real `tensorboard` process; yields get(route, body=None, ready=bool)
    that fetches one route of its HTTP data API (the one its UI reads), retrying until
    `ready(answer)` while it loads the event files. It binds a port the system picks (--port 0)
    and says which: a port picked here and bound later could be taken in between, by a test
    running beside this one."""
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
            "0",
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []  # its stderr, read as it comes (a full pipe would stop it)

    def read() -> None:
        for line in server.stderr:
            said.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        port = serving_port(server, said, timeout)
    except BaseException:
        server.kill()
        server.wait(timeout=30)
        raise

    def get(route: str, body: dict | None = None, ready=bool) -> object:
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

    try:
        yield get
    finally:
        server.terminate()
        server.wait(timeout=30)
        reader.join(timeout=30)


def tensorboard_json(logdir: Path, route: str, body: dict | None = None, ready=bool, timeout: float = 90) -> object:
    """One route of a real `tensorboard` process serving logdir (see `tensorboard`)."""
    with tensorboard(logdir, timeout) as get:
        return get(route, body, ready)


SESSION_GROUPS = {
    "experimentName": "",
    "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"],
    "colParams": [],
    "startIndex": 0,
    "sliceSize": 100,
}


def test_sweep_names_jobs_and_fills_hparams_by_what_it_varies(tmp_path):
    out = tmp_path / "sweep"
    # The experiment sweeps the activation; depth and epochs are constant overrides.
    result = sweep(
        "experiment=vanishing_gradient",
        "model.activation=sigmoid,relu",
        "model.depth=3",
        "diagnostics=true",
        "hydra.callbacks.summary.figures=true",
        f"hydra.sweep.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(statuses(out)) == ["activation=relu", "activation=sigmoid"]
    for figure in ("curves.png", "gradient_flow.png"):  # asked for: drawn as the sweep ends
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({figure})" in (
            out / "summary.md"
        ).read_text()
    assert [p.name for p in out.glob("*tfevents*")] == []  # no run "." at the sweep's root

    with tensorboard(out) as get:
        exp = get("/data/plugin/hparams/experiment", {"experimentName": ""}, ready=lambda a: a.get("hparamInfos"))
        groups = get(
            "/data/plugin/hparams/session_groups", SESSION_GROUPS, ready=lambda a: len(a.get("sessionGroups", [])) == 2
        )
    infos = {info["name"]: info for info in exp["hparamInfos"]}
    names = [info["name"] for info in exp["hparamInfos"]]
    assert infos["model.activation"]["domainDiscrete"] == ["sigmoid", "relu"]
    # What defines the experiment is marked `differs`, which TensorBoard lists first: the swept
    # key, the preset and what it sets (depth, width, init), before the constant defaults.
    defining = [name for name in names if infos[name].get("differs")]
    assert {"model.activation", "experiment", "model.depth", "model.width", "model.init"} <= set(defining)
    assert names[: len(defining)] == sorted(defining)
    assert {"data.batch_size", "optimizer", "status"} <= set(names) - set(defining)  # constant defaults
    assert "hydra" not in names
    assert infos["model.depth"]["type"] == "DATA_TYPE_STRING" and infos["model.depth"]["domainDiscrete"] == ["3"]
    shown = [m["displayName"] for m in exp["metricInfos"]]
    assert shown[:2] == ["val/acc", "test/acc"]

    # Each run's row holds its own value of the swept key and its status; no seeds: a row each.
    rows = {g["name"]: g for g in groups["sessionGroups"]}
    assert {name.split(" #")[0]: g["hparams"]["model.activation"] for name, g in rows.items()} == {
        "activation=sigmoid": "sigmoid",
        "activation=relu": "relu",
    }
    assert all(len(g["sessions"]) == 1 for g in rows.values())
    assert all(g["hparams"]["status"] == "completed" and g["hparams"]["model.depth"] == "3" for g in rows.values())
    assert not (out / "~mean").exists()  # one seed per setting: nothing to average


def test_a_sweep_with_seeds_is_shown_as_one_row_and_one_mean_per_setting(tmp_path):
    from dltips.observe.compare import read_scalars
    from dltips.observe.intervals import mean_ci

    out = tmp_path / "sweep"
    result = sweep(
        "hydra/launcher=stacked",
        "model.activation=relu,tanh",
        "optimizer.lr=0.05,0.1",
        "seed=0,1,2",
        f"hydra.sweep.dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    settings = [
        "activation=relu,lr=0.05",
        "activation=relu,lr=0.1",
        "activation=tanh,lr=0.05",
        "activation=tanh,lr=0.1",
    ]
    assert sorted(p.name for p in (out / "~mean").iterdir()) == settings
    with tensorboard(out) as get:
        groups = get(
            "/data/plugin/hparams/session_groups", SESSION_GROUPS, ready=lambda a: len(a.get("sessionGroups", [])) == 4
        )
        runs = get("/data/runs", ready=lambda a: len(a) == 16)
        layout = get("/data/plugin/custom_scalars/layout", ready=lambda a: a.get("category"))
        mean = get(
            "/data/plugin/scalars/scalars?run=~mean/activation%3Drelu%2Clr%3D0.1&tag=val/acc",
            ready=lambda a: isinstance(a, list) and a,
        )
        low = get(
            "/data/plugin/scalars/scalars?run=~mean/activation%3Drelu%2Clr%3D0.1&tag=~interval/val/acc/lower",
            ready=lambda a: isinstance(a, list) and a,
        )
    # HPARAMS: one row per setting, named by it, holding its 3 seeds, metrics averaged over them.
    rows = {g["name"].split(" #")[0]: g for g in groups["sessionGroups"]}
    assert sorted(rows) == settings
    relu = rows["activation=relu,lr=0.1"]
    assert sorted(s["name"] for s in relu["sessions"]) == [f"activation=relu,lr=0.1,seed={k}" for k in range(3)]
    seeds = [json.loads((out / s["name"] / "metrics.json").read_text())["metrics"] for s in relu["sessions"]]
    averaged = {m["name"]["tag"]: m["value"] for m in relu["metricValues"]}
    assert averaged["~end/test/acc"] == pytest.approx(sum(m["test/acc"] for m in seeds) / 3, rel=1e-5)

    # Curves: the seeds' runs, then one run per setting, sorted after them; no "." run.
    assert sorted(runs) == runs and runs[-4:] == [f"~mean/{s}" for s in settings] and "." not in runs
    seed_curves = [dict(read_scalars(out / f"activation=relu,lr=0.1,seed={k}")["val/acc"]) for k in range(3)]
    assert [step for _, step, _ in mean] == sorted(seed_curves[0]) and len(low) == len(mean)
    for (_, step, value), (_, _, lower) in zip(mean, low):
        m, h = mean_ci([curve[step] for curve in seed_curves])
        assert (value, lower) == pytest.approx((m, m - h), rel=1e-5)
    charts = [chart for category in layout["category"] for chart in category["chart"]]
    margins = {c["title"]: c["margin"]["series"][0] for c in charts if "margin" in c}
    assert margins["val/acc"] == {
        "value": "val/acc",
        "lower": "~interval/val/acc/lower",
        "upper": "~interval/val/acc/upper",
    }
    assert {"train/loss", "val/loss"} <= set(margins)


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


def test_a_sweeps_last_line_names_a_few_of_its_failed_runs_and_counts_the_rest():
    from dltips.launch.sweep import NAMED_RUNS, listed

    runs = [f"lr={i}" for i in range(64)]
    assert listed(runs) == ", ".join(runs[:NAMED_RUNS]) + f" and {64 - NAMED_RUNS} more (summary.md lists them all)"
    assert listed(runs[:NAMED_RUNS]) == ", ".join(runs[:NAMED_RUNS])
