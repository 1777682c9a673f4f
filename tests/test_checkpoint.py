"""Checkpoints: atomic, safe to load, and a killed run resumes to exactly the same result."""

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
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dltips.run import checkpoint
from dltips.train import train
from tests.conftest import compose_config

# ~1,100 training samples of batch 8: epochs long enough to kill one in the middle.
RUN = [
    "data=synthetic",
    "data.source.n_samples=1600",
    "data.batch_size=8",
    "model.dropout=0.2",
    "trainer.max_epochs=3",
    "trainer.progress=log",
    "trainer.log_every_n_steps=5",
    "diagnostics=true",
]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run_dir / "last.pt")["model"]


def test_checkpoint_holds_the_run_state_and_loads_weights_only(tmp_path):
    cfg = compose_config([*RUN, "trainer.max_epochs=2", "regularizer.early_stopping.patience=3"], tmp_path / "run")
    train(cfg)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)  # no code unpickled
    assert {"model", "optimizer", "early_stopping", "epoch", "step", "rng"} <= state.keys()
    assert state["epoch"] == 1 and state["step"] > 0
    assert {"python", "numpy", "torch", "cuda", "shuffle"} <= state["rng"].keys()
    assert (tmp_path / "run" / "best.pt").is_file()


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"epoch": 1})

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.save(path, {"epoch": 2})
    assert checkpoint.load(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_corrupted_checkpoint_is_a_clear_error_naming_the_file(tmp_path):
    run = tmp_path / "run"
    train(compose_config([*RUN, "trainer.max_epochs=1"], run))
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match=str(run / "last.pt")):
        train(compose_config([f"resume={run}"], tmp_path / "ignored"))


def test_resume_without_a_run_dir_is_a_config_error(tmp_path):
    from dltips.config.errors import ConfigError

    with pytest.raises(ConfigError, match="resume"):
        train(compose_config([f"resume={tmp_path / 'nowhere'}"], tmp_path / "ignored"))


def test_killed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    """SIGKILL a real training process mid-epoch, resume it, and compare with a run never stopped."""
    reference = train(compose_config(RUN, tmp_path / "reference"))

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "dltips.train", *RUN, f"hydra.run.dir={killed}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not (killed / "last.pt").exists():  # wait for the end of the first epoch
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    time.sleep(0.05)  # into the next epoch
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before the kill"

    resumed = train(compose_config([f"resume={killed}"], tmp_path / "ignored"))
    assert resumed == reference
    for name, tensor in weights(tmp_path / "reference").items():
        assert torch.equal(tensor, weights(killed)[name]), name

    # The curves of the resumed run have every step once, exactly as the uninterrupted run.
    def steps(run_dir: Path) -> list[int]:
        events = EventAccumulator(str(run_dir))
        events.Reload()
        return [e.step for e in events.Scalars("train/loss")]

    assert steps(killed) == steps(tmp_path / "reference")
    # So does the gradient-flow history the figure draws: the checkpoint carries it.
    ref_steps, ref_norms = checkpoint.load(tmp_path / "reference" / "last.pt")["gradient_flow"]
    got_steps, got_norms = checkpoint.load(killed / "last.pt")["gradient_flow"]
    assert got_steps == ref_steps and len(ref_steps) > 10
    torch.testing.assert_close(got_norms, ref_norms, equal_nan=True)


def test_unwritable_output_dir_is_a_clear_error(tmp_path):
    from dltips.config.errors import ConfigError

    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(ConfigError, match="output_dir.*cannot be written"):
        train(compose_config([*RUN, "trainer.max_epochs=1"], blocked / "run"))
    assert blocked.read_text() == "not a directory"


def test_checkpoint_every_n_epochs_and_after_the_last(tmp_path, monkeypatch):
    """last.pt after epochs 2 and 4 of 5 (N=2) and after the last; best.pt whenever val improves,
    written directly when no last.pt is due that epoch."""
    saved, save = [], checkpoint.save
    monkeypatch.setattr(
        checkpoint, "save", lambda path, state: (saved.append((path.name, state["epoch"])), save(path, state))
    )
    out = tmp_path / "run"
    train(compose_config(["data=synthetic", "trainer.max_epochs=5", "trainer.checkpoint_every_n_epochs=2"], out))
    assert [e for name, e in saved if name == "last.pt"] == [1, 3, 4]
    best = json.loads((out / "metrics.json").read_text())["metrics"]["best_epoch"]
    assert checkpoint.load(out / "best.pt")["epoch"] == best
    assert all(e not in (1, 3, 4) for name, e in saved if name == "best.pt")  # copied from last.pt then


@pytest.mark.parametrize("links", [True, False], ids=["hard link", "no hard links"])
def test_best_is_a_snapshot_of_last_that_later_saves_leave_alone(tmp_path, monkeypatch, links):
    if not links:
        monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError("not supported")))
    checkpoint.save(tmp_path / "last.pt", {"epoch": 1, "w": torch.ones(3)})
    checkpoint.copy(tmp_path / "last.pt", tmp_path / "best.pt")
    checkpoint.save(tmp_path / "last.pt", {"epoch": 2, "w": torch.zeros(3)})
    best = checkpoint.load(tmp_path / "best.pt")
    assert best["epoch"] == 1 and torch.equal(best["w"], torch.ones(3))
    assert checkpoint.load(tmp_path / "last.pt")["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no temporary left


def test_a_run_saved_before_newer_trainer_keys_resumes_with_their_defaults(tmp_path):
    from omegaconf import OmegaConf

    run = tmp_path / "run"
    train(compose_config(["data=synthetic", "trainer.max_epochs=1"], run))
    saved = OmegaConf.load(run / "config.yaml")
    for key in ("ensemble", "checkpoint_every_n_epochs", "tf32", "compile"):
        del saved.trainer[key]
    saved.trainer.max_epochs = 2
    OmegaConf.save(saved, run / "config.yaml")
    (run / "metrics.json").unlink()
    metrics = train(compose_config([f"resume={run}"], tmp_path / "ignored"))
    assert metrics["epochs"] == 2


def test_resume_drops_a_best_checkpoint_newer_than_last(tmp_path):
    """Killed after a best.pt of epoch 2 but before last.pt caught up (N=2): the resumed run
    trains epoch 2 again, so that best.pt is from a future it may not repeat (here: only epoch 0
    ever improves, min_delta being huge). It is dropped rather than left to contradict best_epoch."""
    run, older = tmp_path / "run", tmp_path / "older"
    base = ["data=synthetic", "regularizer.early_stopping.min_delta=1e9"]
    train(compose_config([*base, "trainer.max_epochs=3", "trainer.checkpoint_every_n_epochs=2"], run))
    best = checkpoint.load(run / "best.pt")
    checkpoint.save(run / "best.pt", best | {"epoch": 2})  # as the killed run's epoch 2 left it
    train(compose_config([*base, "trainer.max_epochs=2"], older))  # the same run, stopped after epoch 1
    checkpoint.copy(older / "last.pt", run / "last.pt")
    (run / "metrics.json").unlink()
    metrics = train(compose_config([f"resume={run}"], tmp_path / "ignored"))
    assert metrics["best_epoch"] == 0 and not (run / "best.pt").exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_run_files_get_the_mode_of_a_plainly_created_file(tmp_path):
    """last.pt and metrics.json (atomic writes through a temporary file) get what config.yaml
    (a plain open) gets: 0666 less the umask, not the 0600 of a private temporary file."""
    umask = os.umask(0o027)  # not the usual 022, so that a hard-coded 0644 would fail too
    try:
        out = tmp_path / "run"
        train(compose_config([*RUN, "trainer.max_epochs=1"], out))
    finally:
        os.umask(umask)
    modes = {
        name: (out / name).stat().st_mode & 0o777 for name in ("last.pt", "best.pt", "metrics.json", "config.yaml")
    }
    assert modes == dict.fromkeys(modes, 0o666 & ~0o027), {name: oct(mode) for name, mode in modes.items()}


def test_the_saver_writes_the_state_as_it_was_submitted_in_order(tmp_path):
    """Training goes on changing the tensors while the saver's thread writes: the file holds the
    values at submit time; best.pt linked after last.pt is that last.pt."""
    saver = checkpoint.Saver()
    w = torch.zeros(3)
    for value in (1.0, 2.0):
        w.fill_(value)
        snapshot = checkpoint.detached({"model": {"w": w}, "order": [w]})
        saver.submit(checkpoint.save, tmp_path / "last.pt", snapshot)
    saver.submit(checkpoint.copy, tmp_path / "last.pt", tmp_path / "best.pt")
    w.fill_(3.0)
    saver.wait()
    for name in ("last.pt", "best.pt"):
        state = checkpoint.load(tmp_path / name)
        assert torch.equal(state["model"]["w"], torch.full((3,), 2.0)) and torch.equal(
            state["order"][0], torch.full((3,), 2.0)
        )


def test_a_failed_checkpoint_write_is_raised_in_the_training_thread(tmp_path):
    saver = checkpoint.Saver()
    blocker = tmp_path / "a file"
    blocker.write_text("")
    saver.submit(checkpoint.save, blocker / "last.pt", {"w": torch.zeros(1)})  # a directory that is a file
    with pytest.raises(OSError):
        saver.wait()
    saver.wait()  # reported once


def test_a_full_disk_while_writing_a_checkpoint_is_one_error_and_the_run_resumes(tmp_path, monkeypatch):
    import errno

    from dltips.run import checkpoint as checkpoints

    reference = train(compose_config([*RUN, "trainer.max_epochs=3"], tmp_path / "reference"))
    run, written, real = tmp_path / "run", [], checkpoints.atomic_write

    def disk_full_at_the_second_last_pt(path, write):
        if path.name == "last.pt":
            written.append(path)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(path, write)

    monkeypatch.setattr(checkpoints, "atomic_write", disk_full_at_the_second_last_pt)
    with pytest.raises(checkpoints.CheckpointError, match=r"last.pt cannot be written \(No space left on device\)"):
        train(compose_config([*RUN, "trainer.max_epochs=3"], run))
    assert checkpoints.load(run / "last.pt")["epoch"] == 0  # the previous one, whole
    monkeypatch.undo()
    resumed = train(compose_config([f"resume={run}", "trainer.max_epochs=3"], tmp_path / "ignored"))
    assert resumed == reference


def test_a_disk_that_fills_in_the_middle_of_a_checkpoint_is_the_same_one_error(tmp_path, monkeypatch):
    # The file, not the function, runs out of room: a write part-way through the checkpoint fails.
    import errno

    from dltips.run import checkpoint as checkpoints
    from dltips.run import files

    real_fdopen = files.os.fdopen

    class FillsUp:
        def __init__(self, f):
            self.f, self.room = f, 200

        def write(self, data):
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    saver = checkpoints.Saver()
    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: FillsUp(real_fdopen(fd, mode)))
    saver.submit(checkpoints.save, tmp_path / "last.pt", {"w": torch.zeros(1000)})
    with pytest.raises(checkpoints.CheckpointWriteError, match=r"No space left on device\); no last.pt was written"):
        saver.wait()
    assert [p.name for p in tmp_path.iterdir()] == []  # no half-written file left
