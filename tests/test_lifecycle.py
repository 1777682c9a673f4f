"""A run's life: resumed only as itself, trained longer on request, stopped when it stopped,
interrupted by a signal without losing a step, and nothing recorded that is not a result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dltips.config.errors import ConfigError
from dltips.run import checkpoint
from dltips.train import train
from tests.conftest import compose_config

RUN = ["data=synthetic", "data.source.n_samples=400", "trainer.progress=log"]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run_dir / "last.pt")["model"]


def report(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_a_finished_run_trains_longer_to_exactly_the_longer_run(tmp_path):
    reference = train(compose_config([*RUN, "trainer.max_epochs=4"], tmp_path / "four"))
    train(compose_config([*RUN, "trainer.max_epochs=2"], tmp_path / "two"))
    longer = train(compose_config([f"resume={tmp_path / 'two'}", "trainer.max_epochs=4"], tmp_path / "ignored"))
    assert longer == reference
    for name, tensor in weights(tmp_path / "four").items():
        assert torch.equal(tensor, weights(tmp_path / "two")[name]), name
    assert OmegaConf.load(tmp_path / "two" / "config.yaml").trainer.max_epochs == 2  # how it was started


@pytest.mark.parametrize("override", ["optimizer.lr=0.5", "model.depth=3", "optimizer=adam"])
def test_resume_with_another_override_is_an_error_naming_it(tmp_path, override):
    train(compose_config([*RUN, "trainer.max_epochs=1"], tmp_path / "run"))
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"Invalid {key}[.:]"):
        train(compose_config([f"resume={tmp_path / 'run'}", override], tmp_path / "ignored"))
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before  # nothing rewritten


def test_a_config_edited_after_the_run_does_not_load_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(compose_config([*RUN, "trainer.max_epochs=1"], run))
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.optimizer = OmegaConf.create({"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.001})
    OmegaConf.save(cfg, run / "config.yaml")
    with pytest.raises(
        ConfigError, match=r"Invalid optimizer._target_: 'torch.optim.Adam' .* allowed: 'torch.optim.SGD'"
    ):
        train(compose_config([f"resume={run}"], tmp_path / "ignored"))


def test_an_unreadable_config_is_one_line(tmp_path):
    run = tmp_path / "run"
    train(compose_config([*RUN, "trainer.max_epochs=1"], run))
    (run / "config.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"Invalid resume: .*its config.yaml is not YAML"):
        train(compose_config([f"resume={run}"], tmp_path / "ignored"))


def test_a_run_that_stopped_early_stays_stopped_when_resumed(tmp_path):
    # Killed after "early stopping at epoch N" and before metrics.json: resuming must not train on.
    stopping = [
        *RUN,
        "trainer.max_epochs=30",
        "regularizer.early_stopping.patience=1",
        "regularizer.early_stopping.min_delta=0.05",
    ]
    first = train(compose_config(stopping, tmp_path / "run"))
    assert first["stop_epoch"] < 29
    before = weights(tmp_path / "run")
    (tmp_path / "run" / "metrics.json").unlink()
    again = train(compose_config([f"resume={tmp_path / 'run'}"], tmp_path / "ignored"))
    assert again == first
    assert all(torch.equal(before[k], v) for k, v in weights(tmp_path / "run").items())
    assert report(tmp_path / "run")["stopped_early"]


@pytest.mark.parametrize("stop", ["completed", "stopped early"])
def test_a_finished_run_resumed_as_is_writes_nothing(tmp_path, stop):
    run = tmp_path / "run"
    extra = ["regularizer.early_stopping.patience=1", "regularizer.early_stopping.min_delta=0.05"]
    first = train(compose_config([*RUN, "trainer.max_epochs=6", *(extra if stop == "stopped early" else [])], run))
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    again = train(compose_config([f"resume={run}"], tmp_path / "ignored"))
    assert again == first
    # No second event file, no checkpoint or report rewritten (a second ~end/* would be logged twice).
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == files


def test_a_diverged_run_records_its_metrics_as_missing(tmp_path):
    cfg = compose_config(
        [*RUN, "loss=mse", "loss.output=identity", "optimizer.lr=10000", "trainer.max_epochs=2"], tmp_path / "run"
    )
    metrics = train(cfg)
    saved = report(tmp_path / "run")
    assert saved["status"] == "diverged"
    assert saved["metrics"]["test/acc"] is None and saved["metrics"]["val/acc"] is None  # not 0.1
    assert metrics["test/acc"] != metrics["test/acc"]  # NaN for Python callers
    assert isinstance(saved["metrics"]["steps"], int)


def test_train_log_holds_every_epoch_under_a_progress_bar(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dltips.train",
            *RUN,
            "trainer.max_epochs=3",
            "trainer.progress=bar",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "run" / "train.log").read_text()
    assert [f"epoch {e}:" in log for e in range(3)] == [True] * 3
    assert f"run directory: {tmp_path / 'run'}" in log and "tensorboard --logdir" in log
    last = log.splitlines()[-1]
    assert "best epoch" in last and "by val/loss: val/loss" in last and "val/acc" in last


# Digits (images: augmentation draws from the shuffle stream too) in batches of 4: epochs long
# enough to land a signal inside one; dropout draws from torch's own stream.
SLOW_EPOCHS = [
    "data.batch_size=4",
    "trainer.max_epochs=2",
    "model.dropout=0.2",
    "data.augment.shift=1",
    "trainer.progress=log",
]


def training(overrides: list[str], run: Path) -> subprocess.Popen:
    """A dltips-train process on `run`, once it has written its first last.pt and trains on."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dltips.train", *overrides, f"hydra.run.dir={run}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not (run / "last.pt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.01)
    return process


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_after_the_step_and_the_run_resumes_exactly(tmp_path, sig, code):
    reference = train(compose_config(SLOW_EPOCHS, tmp_path / "reference"))
    run = tmp_path / "run"
    process = training(SLOW_EPOCHS, run)  # the end of epoch 0, then into epoch 1
    time.sleep(0.1)
    os.kill(process.pid, sig)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == code, output
    assert "Traceback" not in output
    saved = report(run)
    assert saved["status"] == "interrupted" and f"resume='{run}'" in saved["message"]
    state = checkpoint.load(run / "last.pt")
    assert state["order"] is not None and 0 < state["batch"]  # stopped inside an epoch

    resumed = train(compose_config([f"resume={run}"], tmp_path / "ignored"))
    assert resumed == reference
    for name, tensor in weights(tmp_path / "reference").items():
        assert torch.equal(tensor, weights(run)[name]), name


def test_a_run_directory_in_use_is_refused_and_left_alone(tmp_path):
    from dltips.run.rundir import lock

    run = tmp_path / "run"
    train(compose_config([*RUN, "trainer.max_epochs=1"], run))
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != ".lock"}
    # Another process holds it (here: this one, through a second open file, as flock sees it).
    with lock(run):
        with pytest.raises(
            ConfigError, match=rf"Invalid output_dir: .* is in use by another process \(pid {os.getpid()}\)"
        ):
            train(compose_config([f"resume={run}", "trainer.max_epochs=2"], tmp_path / "ignored"))
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != ".lock"} == before
    train(compose_config([f"resume={run}", "trainer.max_epochs=2"], tmp_path / "ignored"))  # free again
    assert report(run)["metrics"]["epochs"] == 2


def test_a_second_run_into_a_directory_in_use_writes_nothing_there(tmp_path):
    from dltips.run.rundir import lock

    run = tmp_path / "run"
    train(compose_config([*RUN, "trainer.max_epochs=1"], run))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    with lock(run):  # the first run still training
        with pytest.raises(ConfigError, match=r"Invalid output_dir: .* is in use by another process"):
            train(compose_config([*RUN, "trainer.max_epochs=1", "model.width=32"], run))
    # Its config.yaml is what its last.pt was trained with: it still resumes.
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == before
    train(compose_config([f"resume={run}", "trainer.max_epochs=2"], tmp_path / "ignored"))
    assert report(run)["metrics"]["epochs"] == 2


def test_half_written_checkpoints_of_a_killed_write_are_removed(tmp_path):
    run = tmp_path / "run"
    train(compose_config([*RUN, "trainer.max_epochs=1"], run))
    leftover = run / ".last.pt.0123456789ab"
    leftover.write_bytes(b"half a checkpoint")
    train(compose_config([f"resume={run}", "trainer.max_epochs=2"], tmp_path / "ignored"))
    assert not leftover.exists() and (run / "last.pt").is_file()


@pytest.mark.slow  # two sweeps in subprocesses
def test_a_killed_sweep_job_redone_goes_on_from_its_checkpoint(tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        "-m",
        "dltips.train",
        "-m",
        *RUN,
        "trainer.max_epochs=3",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    ]
    assert subprocess.run(args, cwd=tmp_path, capture_output=True, timeout=300).returncode == 0
    job = sweep / "seed=1"
    reference = report(job)["metrics"]
    # As a job killed after epoch 1 leaves it: last.pt of epoch 1 (from the same run trained
    # for 2 epochs), no metrics.json.
    (job / "metrics.json").unlink()
    short = tmp_path / "short"
    train(compose_config([*RUN, "trainer.max_epochs=2", "seed=1", "data.split_seed=1"], short))
    checkpoint.copy(short / "last.pt", job / "last.pt")
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "resuming the earlier attempt" in result.stdout + result.stderr
    assert report(job)["metrics"] == reference


@pytest.mark.parametrize("case", ["under a file", "unknown key"])
def test_command_errors_before_training_are_one_line(tmp_path, case):
    (tmp_path / "afile").write_text("")
    args = {"under a file": [f"hydra.run.dir={tmp_path / 'afile' / 'run'}"], "unknown key": ["foo.bar=1"]}[case]
    result = subprocess.run(
        [sys.executable, "-m", "dltips.launch.cli", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert result.stderr.startswith("dltips-train: error:")
    assert not (tmp_path / "outputs").exists()


def test_overrides_too_long_for_a_file_name_end_in_a_hash():
    from dltips.config.resolvers import NAME_BYTES, suffix

    long = "optimizer.lr=0." + "0" * 300 + "1"
    name = suffix(long)
    assert len(name.encode()) <= NAME_BYTES + 1 and name.startswith("_optimizer.lr=0.000")
    assert name != suffix(long.replace("1", "2")) and suffix("seed=1") == "_seed=1" and suffix("") == ""


def test_runs_and_sweeps_started_in_the_same_second_get_directories_of_their_own(tmp_path):
    from dltips.config.resolvers import claim

    name = str(tmp_path / "runs" / "2026-11-29_10-00-00_seed=1")
    assert [claim(name) for _ in range(3)] == [name, f"{name}_2", f"{name}_3"]
    assert all(Path(p).is_dir() for p in (name, f"{name}_2", f"{name}_3"))
    # The run and sweep directories of the configs go through it (a given hydra.sweep.dir does not).
    hydra = OmegaConf.load(Path(__file__).parents[1] / "configs" / "hydra" / "default.yaml")
    assert (
        "dltips.run_dir:" in hydra.run._get_node("dir")._value()
        and "dltips.claim:" in hydra.sweep._get_node("dir")._value()
    )


def test_a_checkpoint_that_does_not_fit_the_config_is_one_line(tmp_path):
    # A checkpoint written before checkpoints recorded their config, and a config.yaml widened since.
    run = tmp_path / "run"
    train(compose_config([*RUN, "trainer.max_epochs=1"], run))
    state = checkpoint.load(run / "last.pt")
    del state["config"]
    checkpoint.save(run / "last.pt", state)
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.model.width = 64
    OmegaConf.save(cfg, run / "config.yaml")
    with pytest.raises(
        checkpoint.CheckpointError,
        match=r"last.pt does not fit the run's config.yaml: Error\(s\) in loading state_dict",
    ) as err:
        train(compose_config([f"resume={run}"], tmp_path / "ignored"))
    assert "\n" not in str(err.value)


def test_early_stopping_remembers_the_best_epochs_metrics_across_a_checkpoint():
    from dltips.early_stopping import EarlyStopping

    stopper = EarlyStopping(patience=2, monitor="val/loss", min_delta=0.0)
    model = torch.nn.Linear(2, 2)
    for epoch, (loss, acc) in enumerate([(1.0, 0.5), (0.5, 0.7), (0.6, 0.8)]):
        stopper.update(epoch, {"val/loss": loss, "val/acc": acc}, model)
    assert stopper.best_epoch == 1 and stopper.best_metrics == {"val/loss": 0.5, "val/acc": 0.7}
    again = EarlyStopping(patience=2, monitor="val/loss", min_delta=0.0)
    again.load_state_dict(stopper.state_dict())
    assert again.best_metrics == stopper.best_metrics
    old = {k: v for k, v in stopper.state_dict().items() if k != "best_metrics"}  # an older checkpoint
    again.load_state_dict(old)
    assert again.best_metrics == {} and again.best_epoch == 1


def test_interrupted_seeds_resume_together_or_alone_exactly(tmp_path):
    import threading

    from dltips.run.interrupt import Interrupted

    # Batches of 8 at lr 0.05: with batches of 4 at 0.1 seed 1 diverges in its first epoch.
    members = [*SLOW_EPOCHS, "data.batch_size=8", "optimizer.lr=0.05"]
    run = tmp_path / "ensemble"

    def signal_in_epoch_1():  # after the first epoch's checkpoint, as a SIGTERM from outside would
        deadline = time.monotonic() + 240
        while not (run / "member_01" / "last.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=signal_in_epoch_1, daemon=True).start()
    with pytest.raises(Interrupted) as stopped:
        train(compose_config([*members, "trainer.seeds=2"], run))
    assert stopped.value.exit_code == 143
    assert report(run)["status"] == "interrupted" and f"resume='{run}'" in report(run)["message"]
    for k in (0, 1):
        assert report(run / f"member_{k:02d}")["status"] == "interrupted"
        assert checkpoint.load(run / f"member_{k:02d}" / "last.pt")["batch"] > 0
    # Member 1 resumed alone ends as its seed trained alone from the start ...
    copy = tmp_path / "member_01"
    shutil.copytree(run / "member_01", copy)
    alone = train(compose_config([*members, "seed=1", "data.split_seed=0"], tmp_path / "alone"))
    resumed = train(compose_config([f"resume={copy}"], tmp_path / "ignored"))
    assert resumed == pytest.approx(alone, rel=1e-5, abs=1e-6)
    # ... and so does every member of the whole run resumed together.
    train(compose_config([f"resume={run}"], tmp_path / "ignored"))
    together = report(run / "member_01")["metrics"]
    assert together == pytest.approx(alone, rel=1e-5, abs=1e-6)


def a_directory_no_run_wrote(tmp_path: Path, case: str) -> Path:
    target = tmp_path / "target"
    if case == "a file":
        target.write_text("not a run")
    elif case != "no such directory":
        target.mkdir()
    if case == "config.yaml only":
        (target / "config.yaml").write_text("seed: 0\n")
    return target


@pytest.mark.parametrize("case", ["no such directory", "an empty directory", "config.yaml only", "a file"])
def test_resume_takes_only_a_directory_a_run_wrote(tmp_path, case):
    from dltips.config.resolvers import run_dir

    target = a_directory_no_run_wrote(tmp_path, case)
    with pytest.raises(ConfigError, match=r"Invalid resume: .* allowed: a run directory dltips wrote"):
        run_dir(str(target), str(tmp_path / "new"))  # what picks hydra.run.dir, before Hydra writes there
    with pytest.raises(ConfigError, match=r"Invalid resume: "):
        train(compose_config([f"resume={target}"], tmp_path / "ignored"))
    assert not (tmp_path / "new").exists()


def test_resume_of_a_directory_no_run_wrote_is_one_line_and_writes_nothing(tmp_path):
    target = a_directory_no_run_wrote(tmp_path, "an empty directory")
    done = subprocess.run(
        [sys.executable, "-m", "dltips.train", f"resume={target}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("dltips-train: error: config error: Invalid resume:")
    assert target.is_dir() and not any(target.iterdir())  # not written into, not removed
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "holds nothing"),
        ("[1, 2]\n", "holds list"),
        ("42\n", "holds int"),
        ("seed: 0\n", "is not a run.s config: no model, optimizer"),
    ],
)
def test_resume_with_a_config_yaml_that_is_no_runs_config_is_one_error(tmp_path, text, why):
    from dltips.config.resolvers import run_dir

    run = tmp_path / "run"
    train(compose_config([*RUN, "trainer.max_epochs=1"], run))
    (run / "config.yaml").write_text(text)
    # Refused where hydra.run.dir is picked: before Hydra opens train.log or the lock is taken.
    with pytest.raises(ConfigError, match=rf"Invalid resume: .*its config.yaml {why}"):
        run_dir(str(run), str(tmp_path / "new"))
    with pytest.raises(ConfigError, match=rf"Invalid resume: .*its config.yaml {why}"):
        train(compose_config([f"resume={run}"], tmp_path / "ignored"))


def source_that_is_interrupted(signum: int):
    """A data source during whose loading the command gets a signal (set-up, before the loop)."""
    import signal as signals

    os.kill(os.getpid(), getattr(signals, f"SIG{signum}") if isinstance(signum, str) else signum)
    time.sleep(1)  # the handler runs at the next bytecode
    raise AssertionError("not interrupted")


@pytest.mark.parametrize("name, code", [("INT", 130), ("TERM", 143)])
def test_a_signal_during_set_up_is_one_line_and_leaves_nothing(tmp_path, name, code):
    args = ["data.source._target_=tests.test_lifecycle.source_that_is_interrupted", f"+data.source.signum={name}"]
    done = subprocess.run(
        [sys.executable, "-m", "dltips.train", *args, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code and "Traceback" not in done.stderr, done.stderr
    assert f"interrupted by SIG{name} before training started" in done.stdout + done.stderr
    assert not (tmp_path / "run").exists()  # nothing to resume: the command's own directory is gone


# (resume of a directory in use is also checked in-process: test_a_run_directory_in_use_is_refused_and_left_alone)
@pytest.mark.parametrize("second", ["the same hydra.run.dir", pytest.param("resume of it", marks=pytest.mark.slow)])
def test_a_second_process_on_a_running_run_leaves_it_untouched(tmp_path, second):
    run = tmp_path / "run"
    slow = [*SLOW_EPOCHS[:1], "trainer.max_epochs=50", *SLOW_EPOCHS[2:], "optimizer.lr=0.01"]
    first = training(slow, run)  # with its files written
    files = {p.relative_to(run): p.read_bytes() for p in run.rglob("*.yaml")}
    assert first.poll() is None  # still training
    args = ["model.width=32", f"hydra.run.dir={run}"] if second == "the same hydra.run.dir" else [f"resume={run}"]
    other = subprocess.run([sys.executable, "-m", "dltips.train", *args], capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "Traceback" not in other.stderr, other.stderr
    assert "is in use by another process" in other.stderr
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*.yaml")} == files  # config.yaml, .hydra/
    os.kill(first.pid, signal.SIGINT)
    output, _ = first.communicate(timeout=120)
    assert first.returncode == 130, output
    longer = checkpoint.load(run / "last.pt")["epoch"] + 2
    resumed = train(compose_config([f"resume={run}", f"trainer.max_epochs={longer}"], tmp_path / "ignored"))
    assert resumed["epochs"] == longer  # the first run goes on from its own files
