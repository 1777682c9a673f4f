"""train(cfg) end to end, its files and TensorBoard events, and the dltips-train command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from dltips.config.errors import ConfigError
from dltips.train import train

REPO = Path(__file__).resolve().parents[1]
FINAL_KEYS = {"train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"}


def read_events(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return events


def hparams_of(events: EventAccumulator) -> dict:
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}


def test_train_on_synthetic_returns_final_metrics_and_writes_run(make_cfg):
    cfg = make_cfg()
    metrics = train(cfg)
    assert FINAL_KEYS <= metrics.keys()
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["test/loss"] > 0
    run = Path(cfg.output_dir)
    report = json.loads((run / "metrics.json").read_text())
    assert report["status"] == "completed"
    assert report["metrics"]["test/acc"] == metrics["test/acc"]
    assert (run / "config.yaml").is_file()


def test_default_config_learns_digits(make_cfg):
    """The README's promise: the default experiment reaches >= 90% test accuracy on digits."""
    metrics = train(make_cfg("trainer.progress=log", fast=False))
    assert metrics["test/acc"] >= 0.90
    assert metrics["epochs"] == 20


def test_same_seed_same_metrics_other_seed_differs(make_cfg):
    a, b = train(make_cfg("seed=3")), train(make_cfg("seed=3"))
    c = train(make_cfg("seed=4"))
    assert a == b
    assert a["val/loss"] != c["val/loss"]


def test_event_files_hold_the_curves_and_hparams(make_cfg):
    cfg = make_cfg("trainer.log_every_n_steps=2", "model.activation=tanh", "optimizer=adam")
    metrics = train(cfg)
    events = read_events(Path(cfg.output_dir))
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/loss_epoch",
        "train/acc",
        "val/loss",
        "val/acc",
        "~run/lr",
        "~end/test/loss",
        "~end/test/acc",
    } <= tags
    assert len(events.Scalars("val/acc")) == 2  # once per epoch
    steps = [e.step for e in events.Scalars("train/loss")]
    assert steps == sorted(steps) and steps[0] == 2 and len(steps) > 2
    assert events.Scalars("~end/test/acc")[-1].value == pytest.approx(metrics["test/acc"])
    params = hparams_of(events)  # in the run's own event file, not a sub-run
    assert params["model.activation"] == "tanh" and params["optimizer.lr"] == pytest.approx(0.001)
    assert params["seed"] == "0"  # an integer, shown as one (TensorBoard shows numbers as 0.0000)
    assert list(Path(cfg.output_dir).iterdir())  # and no timestamped sub-directory for them
    assert not [p for p in Path(cfg.output_dir).iterdir() if p.is_dir()]


def test_bad_value_is_a_config_error_before_anything_is_written(make_cfg):
    cfg = make_cfg("model.activation=foo")
    with pytest.raises(ConfigError, match="model.activation: 'foo'.*sigmoid.*maxout"):
        train(cfg)
    assert not Path(cfg.output_dir).exists()


def test_cuda_without_gpu_is_a_config_error(make_cfg, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ConfigError, match="trainer.device: 'cuda'"):
        train(make_cfg("trainer.device=cuda"))


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dltips.train", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_runs_with_overrides_into_a_named_run_dir(tmp_path):
    result = run_cli("data=synthetic", "trainer.max_epochs=1", "model.depth=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    assert run.name.endswith("_data=synthetic,model.depth=1,trainer.max_epochs=1")
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert (run / ".hydra" / "config.yaml").is_file()


def test_cli_bad_value_exits_nonzero_with_one_line(tmp_path):
    result = run_cli("model.depth=0", cwd=tmp_path)
    assert result.returncode == 2
    assert "model.depth: 0" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # tests/test_sweeps.py runs sweeps by default; this one adds the basic multirun path
def test_multirun_two_jobs_in_named_subdirs(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "model.activation=sigmoid,relu",
        "data=synthetic",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert runs == ["activation=relu", "activation=sigmoid"]  # the constant overrides are not in the names
    for name in runs:
        assert json.loads((sweep / name / "metrics.json").read_text())["status"] == "completed"
        assert hparams_of(read_events(sweep / name))["model.activation"] in ("sigmoid", "relu")


def test_tf32_flag_reaches_torch(tmp_path):
    import torch

    from dltips.engine.build import setup
    from tests.conftest import compose_config

    try:
        setup(compose_config(["data=synthetic", "trainer.tf32=true"], tmp_path / "a"))
        assert torch.backends.cuda.matmul.allow_tf32
        setup(compose_config(["data=synthetic"], tmp_path / "b"))
        assert not torch.backends.cuda.matmul.allow_tf32  # the default: full float32 matmuls
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False


@pytest.mark.parametrize("backend", ["eager", pytest.param("true", marks=pytest.mark.slow)])
def test_compiled_model_trains_to_the_same_numbers(backend, tmp_path):
    """trainer.compile goes through torch.compile (dynamo); the eager backend changes no
    arithmetic and inductor only its rounding. Checkpoints keep the model's own keys."""
    import torch

    from dltips.run import checkpoint
    from tests.conftest import compose_config

    torch._dynamo.reset()
    run = ["data=synthetic", "trainer.max_epochs=2", "model.dropout=0.2"]
    compiled = train(compose_config([*run, f"trainer.compile={backend}"], tmp_path / "compiled"))
    assert torch._dynamo.utils.counters["stats"]["calls_captured"] > 0  # dynamo really traced the model
    plain = train(compose_config(run, tmp_path / "plain"))
    for key in plain:
        assert compiled[key] == pytest.approx(plain[key], rel=1e-4, abs=1e-5), key
    keys = lambda run_dir: set(checkpoint.load(run_dir / "last.pt")["model"])  # noqa: E731
    assert keys(tmp_path / "compiled") == keys(tmp_path / "plain")


def test_events_are_written_in_the_calling_thread(tmp_path):
    """open_writer: no writer thread; every event reaches the file by flush and close."""
    import threading

    from dltips.observe.compare import read_scalars
    from dltips.observe.writer import log_scalars, open_writer

    before = threading.active_count()
    writer = open_writer(tmp_path)
    assert threading.active_count() == before
    for step in range(1, 6):
        writer.add_scalar("train/loss", 1.0 / step, step)
        log_scalars(writer, {"a": float(step), "b": step * 2}, step)
    writer.flush()
    assert [v for _, v in read_scalars(tmp_path)["train/loss"]] == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])
    writer.close()
    assert [v for _, v in read_scalars(tmp_path)["b"]] == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_log_scalars_writes_each_value_as_add_scalar_does(tmp_path):
    """log_scalars builds its values itself: each must be the proto torch's add_scalar writes."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from dltips.observe.writer import log_scalars, open_writer

    writer = open_writer(tmp_path)
    writer.add_scalar("val/acc", 0.3, 1)
    writer.add_scalar("epoch", 2, 1)
    log_scalars(writer, {"val/acc": torch.tensor(0.3), "epoch": 2}, 2)
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    by_step: dict[int, list] = {}
    for event in EventFileLoader(str(path)).Load():
        if event.HasField("summary"):
            by_step.setdefault(event.step, []).extend(event.summary.value)
    assert len(by_step[1]) == 2 and by_step[1] == by_step[2]


def test_threads_auto_is_one_for_small_networks_and_torchs_count_for_large_ones(monkeypatch):
    from dltips.engine import threads

    monkeypatch.setattr(threads, "TORCH_DEFAULT", 2)
    assert threads.resolve("auto", 26_122) == 1  # the digits MLP
    assert threads.resolve("auto", threads.AUTO_ONE_THREAD_BELOW) == 2
    assert threads.resolve("auto", threads.AUTO_ONE_THREAD_BELOW, most=1) == 1  # a joblib job's share
    assert threads.resolve(3, 26_122) == 3
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(ConfigError, match=r"Invalid trainer.threads: .*; allowed: auto or an integer >= 1"):
            threads.resolve(bad, 10)


@pytest.mark.parametrize("setting, expected", [("1", 1), ("2", 2)])
def test_train_runs_with_the_threads_it_is_given(make_cfg, setting, expected, monkeypatch):
    from dltips.engine import threads

    monkeypatch.setattr(threads.ThreadTuner, "__call__", lambda *a: pytest.fail("a count given is not measured"))
    torch.set_num_threads(3)
    try:
        train(make_cfg(f"trainer.threads={setting}", "trainer.max_epochs=1"))
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(1)


class StepClock:
    """A clock for ThreadTuner: each step takes `ms[n]` milliseconds on n torch threads (read
    when the step ends), and `slow` of them take 20× as long (an epoch's end among the steps)."""

    def __init__(self, ms: dict[int, float], slow: frozenset = frozenset()):
        self.ms, self.slow, self.now, self.calls = ms, slow, 0.0, 0

    def __call__(self) -> float:
        self.now += self.ms[torch.get_num_threads()] * (20 if self.calls in self.slow else 1) / 1e3
        self.calls += 1
        return self.now


def tuned(clock: StepClock, steps: int, start: int = 1):
    """The threads a ThreadTuner over (1, 2) leaves, step by step, from `start`."""
    from dltips.engine.threads import ThreadTuner

    tuner = ThreadTuner((1, 2), start, clock)
    used = []
    for _ in range(steps):
        used.append(torch.get_num_threads())
        tuner()
    return tuner, used


def test_threads_auto_keeps_the_count_its_own_steps_measure_faster_and_measures_again(monkeypatch):
    """The lecture's networks alone run fastest on one thread; a stack of them on an idle
    machine on all cores, and on one again once a neighbour keeps a core busy."""
    from dltips.engine import threads

    monkeypatch.setattr(threads, "TRIAL_EVERY", 40)
    trial = threads.TRIAL_STEPS + 1  # a step to start the threads, then the timed ones
    try:
        clock = StepClock({1: 5.7, 2: 3.4}, slow=frozenset({trial + 2}))  # an epoch's end in the trial
        tuner, used = tuned(clock, 2 * trial + 20)
        assert used == [1] * trial + [2] * trial + [2] * 20 and tuner.chosen == 2
        clock.ms = {1: 6.4, 2: 14.4}  # a neighbour takes a core: the next trial turns back to one
        for _ in range(20 + trial):
            tuner()
        assert tuner.chosen == 1 and torch.get_num_threads() == 1
        # Within the margin, the count it has is kept (no flapping on noise), and every trial that
        # changes nothing puts the next one twice as far: trying the slower count is what it costs.
        tuner, used = tuned(StepClock({1: 1.0, 2: 0.95}), 3 * trial + 80 + 160 + 1)
        assert tuner.chosen == 1
        trials = [i for i in range(1, len(used)) if used[i] == 2 and used[i - 1] == 1]
        assert trials == [trial, 2 * trial + 80, 3 * trial + 80 + 160]
    finally:
        torch.set_num_threads(1)


def test_threads_auto_measures_a_run_on_a_cpu_of_several_cores_only(make_cfg, monkeypatch):
    from dltips.engine import threads

    steps = []
    monkeypatch.setattr(threads.ThreadTuner, "__call__", lambda self, *a: steps.append(torch.get_num_threads()))
    try:
        monkeypatch.setattr(threads, "TORCH_DEFAULT", 2)
        train(make_cfg("trainer.threads=auto", "trainer.max_epochs=1"))  # 3.5k parameters: too small to gain
        assert steps == []
        monkeypatch.setattr(threads, "MEASURED_FROM", 1000)
        report = train(make_cfg("trainer.threads=auto", "trainer.max_epochs=1"))
        assert len(steps) == report["steps"] > 0
        steps.clear()
        monkeypatch.setattr(threads, "TORCH_DEFAULT", 1)  # one core: nothing to choose
        train(make_cfg("trainer.threads=auto", "trainer.max_epochs=1"))
        assert steps == []
    finally:
        torch.set_num_threads(1)
