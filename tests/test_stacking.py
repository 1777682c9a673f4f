"""hydra/launcher=stacked: every job of a sweep trained in a stack equals the same job run by
Hydra's basic launcher — metrics, weights, TensorBoard curves and hparams, files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dltips.config.stackable import stack_key
from dltips.observe.compare import read_scalars
from dltips.run import checkpoint
from tests.conftest import compose_config
from tests.test_train import hparams_of, read_events

SMALL = [
    "model.width=16",
    "data.train_size=300",
    "trainer.max_epochs=3",
    "trainer.progress=log",
    "trainer.log_every_n_steps=3",
]


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dltips.train", "-m", *args, *SMALL],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def jobs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if (p / "metrics.json").is_file())


def assert_same_job(stacked: Path, basic: Path) -> None:
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (stacked, basic))
    assert (a["status"], a["message"], a["stopped_early"]) == (b["status"], b["message"], b["stopped_early"]), (
        stacked.name
    )
    assert a["metrics"].keys() == b["metrics"].keys()
    for key, value in b["metrics"].items():
        assert a["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (stacked.name, key)
    for name in ("last.pt", "best.pt"):
        saved, reference = checkpoint.load(stacked / name), checkpoint.load(basic / name)
        assert saved["epoch"] == reference["epoch"] and saved["config"] == reference["config"]
        for key, w in reference["model"].items():
            torch.testing.assert_close(saved["model"][key], w, rtol=1e-5, atol=1e-6, msg=f"{stacked.name} {name} {key}")
    curves, references = read_scalars(stacked), read_scalars(basic)
    assert curves.keys() == references.keys()
    for tag, reference in references.items():
        assert [s for s, _ in curves[tag]] == [s for s, _ in reference], tag
        assert [v for _, v in curves[tag]] == pytest.approx([v for _, v in reference], rel=1e-5, abs=1e-6), (
            stacked.name,
            tag,
        )
    assert hparams_of(read_events(stacked)) == hparams_of(read_events(basic))
    files = lambda d: sorted(p.name for p in d.iterdir() if not p.name.startswith("events"))  # noqa: E731
    assert files(stacked) == files(basic)
    assert sorted(p.name for p in (stacked / ".hydra").iterdir()) == sorted(
        p.name for p in (basic / ".hydra").iterdir()
    )
    # Hydra's record of the job: its config and overrides as Hydra composes them (the stacked
    # launcher composes once per group choice: dltips.launch.compose), its own node but for the
    # launcher and where the sweep is.
    for name in ("config.yaml", "overrides.yaml"):
        assert (stacked / ".hydra" / name).read_text() == (basic / ".hydra" / name).read_text(), name
    records = [OmegaConf.load(d / ".hydra" / "hydra.yaml") for d in (stacked, basic)]
    for record in records:
        for key in ("launcher", "sweep", "run", "overrides.hydra", "runtime.output_dir", "runtime.choices"):
            parent, _, leaf = f"hydra.{key}".rpartition(".")
            del OmegaConf.select(record, parent)[leaf]
    assert records[0] == records[1]
    config, reference_config = (OmegaConf.load(d / "config.yaml") for d in (stacked, basic))
    del config["output_dir"], reference_config["output_dir"]
    assert config == reference_config
    # train.log: this job's own epoch lines and end, no other job's.
    epochs = lambda d: [
        line.split(" - ")[1].split(":")[0] for line in (d / "train.log").read_text().splitlines() if ": loss " in line
    ]  # noqa: E731
    assert epochs(stacked) == epochs(basic) and epochs(basic)
    log = (stacked / "train.log").read_text()
    assert f"({stacked})" in log and not [p for p in stacked.parent.iterdir() if p != stacked and f"({p})" in log]


def test_a_stacked_sweep_equals_the_basic_launchers(tmp_path):
    """8 jobs that differ in learning rate, weight decay (0 or not: other parameter groups),
    seed (and with it the data split), trained as one stack; early stopping stops some."""
    grid = [
        "optimizer=momentum",
        "optimizer.lr=0.05,0.3",
        "regularizer.weight_decay=0,0.01",
        "seed=0,1",
        "model.dropout=0.2",
        "regularizer.early_stopping.patience=1",
    ]
    basic = sweep(*grid, f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr[-3000:]
    stacked = sweep(*grid, "hydra/launcher=stacked", f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=tmp_path)
    assert stacked.returncode == 0, stacked.stderr[-3000:]
    assert "training 8 jobs together" in stacked.stderr + stacked.stdout
    names = [p.name for p in jobs(tmp_path / "basic")]
    assert len(names) == 8 and [p.name for p in jobs(tmp_path / "stacked")] == names
    for name in names:
        assert_same_job(tmp_path / "stacked" / name, tmp_path / "basic" / name)
    # The sweep's own summary reads the same.
    rows = lambda d: [
        line.split("|")[1:4] for line in (d / "summary.md").read_text().splitlines() if line.startswith("| ")
    ]  # noqa: E731
    assert rows(tmp_path / "stacked") == rows(tmp_path / "basic")


@pytest.mark.slow  # two sweeps; tests/test_compose.py checks the same compositions in-process
def test_a_stacked_sweep_over_config_groups_and_values_records_each_job_as_hydra_does(tmp_path):
    # Jobs composed once per group choice (dltips.launch.compose): each job's .hydra/ record,
    # config, name and results equal the basic launcher's, which composes every job itself.
    grid = ["optimizer=momentum,torch_momentum", "optimizer.lr=0.01,0.05"]
    basic = sweep(*grid, f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr[-3000:]
    stacked = sweep(*grid, "hydra/launcher=stacked", f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=tmp_path)
    assert stacked.returncode == 0, stacked.stderr[-3000:]
    names = [p.name for p in jobs(tmp_path / "basic")]
    assert len(names) == 4 and [p.name for p in jobs(tmp_path / "stacked")] == names
    for name in names:
        assert_same_job(tmp_path / "stacked" / name, tmp_path / "basic" / name)


def test_incompatible_jobs_train_apart_a_diverging_one_stops_alone_a_bad_one_fails_alone(tmp_path):
    out = tmp_path / "sweep"
    grid = [
        "model.activation=relu,tanh,foo",
        "optimizer.lr=0.1,10000",
        "loss=mse",
        "loss.output=identity",
        "hydra/launcher=stacked",
    ]
    result = sweep(*grid, f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert result.returncode != 0  # the failed jobs are named at the end
    log = result.stderr + result.stdout
    assert "training 2 jobs together: activation=relu,lr=0.1, activation=relu,lr=10000" in log
    assert "training 2 jobs together: activation=tanh,lr=0.1, activation=tanh,lr=10000" in log
    status = {p.name: json.loads((p / "metrics.json").read_text())["status"] for p in jobs(out)}
    assert status == {
        "activation=foo,lr=0.1": "failed", "activation=foo,lr=10000": "failed",
        "activation=relu,lr=0.1": "completed", "activation=relu,lr=10000": "diverged",
        "activation=tanh,lr=0.1": "completed", "activation=tanh,lr=10000": "diverged",
    }  # fmt: skip  # a grid: one row per activation, lr=0.1 then lr=10000
    assert "Invalid model.activation: 'foo'" in (out / "activation=foo,lr=0.1" / "error.txt").read_text()
    # A re-run skips what finished (diverged included); the failed jobs are tried again, alone.
    again = sweep(*grid, f"hydra.sweep.dir={out}", cwd=tmp_path)
    log = again.stderr + again.stdout
    assert again.returncode != 0 and "activation=relu,lr=0.1, activation=relu" not in log
    assert log.count("already completed, skipped") == 2 and log.count("already diverged, skipped") == 2


@pytest.mark.parametrize(
    "change, together",
    [
        ("seed=1", True),
        ("optimizer.lr=0.3", True),
        ("regularizer.weight_decay=0.01", True),
        ("model.dropout=0.3", True),
        ("model.init=xavier", True),
        ("model.dropout_mode=inverted", True),
        ("regularizer.early_stopping.patience=2", True),
        ("data.augment.rotate=10", True),
        ("model.dropout=0", False),
        ("model.input_dropout=0.2", False),
        ("model.width=32", False),
        ("model.activation=tanh", False),
        ("data.batch_size=64", False),
        ("optimizer=adam", False),
        ("data=wine", False),
        ("trainer.max_epochs=5", False),
        ("loss=mse", False),
    ],
)
def test_what_may_differ_within_a_stack(change, together, tmp_path):
    base = ["model.dropout=0.1"]
    a = compose_config(base, tmp_path / "a")
    b = compose_config([*base, change], tmp_path / "b")
    assert (stack_key(a) == stack_key(b)) is together


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "momentum"])
def test_members_with_their_own_schedule_rate_and_dropout_equal_each_alone(optimizer, tmp_path):
    """train_networks on configs that differ in schedule numbers (per step), learning rate,
    dropout rate and mode, and initialisation: each member equals its config trained alone,
    also after a third one diverges and leaves the stack (its rate, schedule and dropout rate
    leave the (K,) settings with it)."""
    from dltips.engine.loop import train_networks
    from dltips.engine.members import HydraContext
    from dltips.train import train

    base = [
        "model.width=16",
        "data.train_size=300",
        "trainer.max_epochs=3",
        "trainer.progress=log",
        f"optimizer={optimizer}",
        "scheduler=step",
        "scheduler.interval=step",
        "scheduler.factor.step_size=5",
        "data.split_seed=0",
    ]
    variants = [
        ["scheduler.factor.gamma=0.9", "model.dropout=0.1"],
        [
            "scheduler.factor.gamma=0.5",
            "model.dropout=0.3",
            "model.dropout_mode=inverted",
            "optimizer.lr=0.02",
            "model.init=xavier",
            "seed=1",
        ],
        ["scheduler.factor.gamma=0.7", "model.dropout=0.2", "optimizer.lr=1e30", "seed=2"],  # diverges
    ]
    cfgs = [compose_config([*base, *v], tmp_path / f"stacked{i}") for i, v in enumerate(variants)]
    ms = train_networks(cfgs, [HydraContext()] * 3)
    assert [m.report["status"] for m in ms.members] == ["completed", "completed", "diverged"]
    assert ms.live == [0, 1]  # the diverged one left
    for i, v in enumerate(variants[:2]):
        alone = train(compose_config([*base, *v], tmp_path / f"alone{i}"))
        for key, value in alone.items():
            assert ms.members[i].report["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (i, key)
        lrs, reference = (
            read_scalars(tmp_path / f"stacked{i}")["~run/lr"],
            read_scalars(tmp_path / f"alone{i}")["~run/lr"],
        )
        assert [s for s, _ in lrs] == [s for s, _ in reference]
        assert [v for _, v in lrs] == pytest.approx([v for _, v in reference])


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "8"])
def test_max_members_is_checked(value):
    from hydra_plugins.dltips_stacked.stacked_launcher import StackedLauncher

    with pytest.raises(ValueError, match=rf"^Invalid hydra.launcher.max_members: {value!r}; allowed: an integer >= 1$"):
        StackedLauncher(max_members=value)


def test_stacks_keep_sweep_order_and_max_members():
    from dltips.config.stackable import in_stacks

    assert in_stacks(["a", "b", "a", "a", "", "a", ""], max_members=2) == [[0, 2], [3, 5], [1], [4], [6]]


def test_a_seeds_job_trains_its_seeds_and_a_job_rejected_at_set_up_is_recorded(tmp_path):
    """trainer.seeds=3 in a stacked sweep is that job's own stack of 3 (member_<k>/ and its
    summary); a job whose config is rejected while it is set up (old and new name disagree)
    fails alone."""
    out = tmp_path / "sweep"
    result = sweep(
        "trainer.seeds=2,3", "trainer.ensemble=3", "hydra/launcher=stacked", f"hydra.sweep.dir={out}", cwd=tmp_path
    )
    assert result.returncode != 0
    assert (
        "Invalid trainer.ensemble: 3; allowed: null, or 2 with trainer.seeds=2"
        in (out / "seeds=2" / "error.txt").read_text()
    )
    report = json.loads((out / "seeds=3" / "metrics.json").read_text())
    assert report["status"] == "completed" and report["metrics"]["members_completed"] == 3
    assert [
        json.loads((out / "seeds=3" / f"member_{k:02d}" / "metrics.json").read_text())["status"] for k in range(3)
    ] == ["completed"] * 3


def test_what_a_job_logs_while_it_is_set_up_is_in_its_train_log_as_with_the_basic_launcher(tmp_path):
    """The stacked launcher configures a job's logging only once the job logs a line while it is
    set up (dltips.launch.hydra_job.job_logging): a rejected job's error, and a finished job's
    `skipped` on a re-run, are in its train.log as the basic launcher writes them."""
    logs = {}
    for launcher in ("basic", "stacked"):
        out = tmp_path / launcher
        text = lambda path: [  # noqa: E731 (without the time, the sweep's directory named alike)
            line.split("]", 1)[1].replace(str(out), "<sweep>") for line in path.read_text().splitlines()
        ]
        grid = [f"hydra/launcher={launcher}", "trainer.seeds=2,3", "trainer.ensemble=3", f"hydra.sweep.dir={out}"]
        for _ in range(2):  # the re-run skips the finished job and rejects the other again
            assert sweep(*grid, cwd=tmp_path).returncode != 0
        logs[launcher] = {job.parent.name: text(job) for job in out.glob("seeds=*/train.log")}
    assert logs["stacked"] == logs["basic"]
    rejected, finished = logs["stacked"]["seeds=2"], logs["stacked"]["seeds=3"]
    assert sum("Invalid trainer.ensemble: 3" in line for line in rejected) == 2
    assert any("already completed, skipped" in line for line in finished)


def test_a_killed_stacked_sweep_rerun_goes_on_from_each_unfinished_jobs_checkpoint(tmp_path):
    """A point that is not the default (tanh) killed mid-sweep: the re-run continues it from its
    last.pt with the sweep's own overrides, and it ends as the uninterrupted sweep's point."""
    out = tmp_path / "sweep"
    grid = ["hydra/launcher=stacked", "model.activation=relu,tanh", "seed=0,1", f"hydra.sweep.dir={out}"]
    first = sweep(*grid, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    job = out / "activation=tanh,seed=1"
    reference = json.loads((job / "metrics.json").read_text())["metrics"]
    # As a job killed after epoch 1 leaves it: last.pt of epoch 1 (the same job trained for 2
    # epochs), no metrics.json.
    (job / "metrics.json").unlink()
    from dltips.train import train

    short = tmp_path / "short"
    two_epochs = [o for o in SMALL if not o.startswith("trainer.max_epochs")] + ["trainer.max_epochs=2"]
    train(compose_config([*two_epochs, "model.activation=tanh", "seed=1"], short))
    checkpoint.copy(short / "last.pt", job / "last.pt")
    again = sweep(*grid, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming the earlier attempt" in again.stdout + again.stderr
    assert "already completed, skipped" in again.stdout + again.stderr
    resumed = json.loads((job / "metrics.json").read_text())["metrics"]
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        assert resumed[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.slow  # three sweeps in subprocesses, one stopped by a real signal
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_stacked_sweep_stopped_by_a_signal_and_rerun_equals_the_uninterrupted_one(tmp_path, sig):
    grid = ["hydra/launcher=stacked", "model.activation=relu,tanh", "seed=0,1", "data.batch_size=4"]
    reference = sweep(*grid, f"hydra.sweep.dir={tmp_path / 'reference'}", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "-m", "dltips.train", "-m", *grid, f"hydra.sweep.dir={out}", *SMALL],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not list(out.glob("activation=tanh,*/last.pt")):  # the second stack in its first epochs
        assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before the signal"
        time.sleep(0.01)
    os.kill(process.pid, sig)
    process.wait(timeout=120)
    again = sweep(*grid, f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for job in jobs(tmp_path / "reference"):
        a, b = (json.loads((d / job.name / "metrics.json").read_text()) for d in (out, tmp_path / "reference"))
        assert a["status"] == b["status"] == "completed", job.name
        for key, value in b["metrics"].items():
            assert a["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (job.name, key)
