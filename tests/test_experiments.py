"""Every experiment config composes, defines its sweep, and runs a one-epoch version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dltips.config.validate import CONFIG_DIR
from dltips.train import train
from tests.conftest import compose_config

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
REMEDIES = sorted(p.stem for p in (Path(CONFIG_DIR) / "remedy").glob("*.yaml"))
ONE_EPOCH = ["trainer.max_epochs=1", "trainer.progress=log"]


def test_the_lectures_experiments_are_all_there():
    assert {
        "vanishing_gradient",
        "activations",
        "cost",
        "normalization",
        "optimizers",
        "overfitting",
        "dropout_ensemble",
    } <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_defines_a_sweep_and_runs_one_epoch(name, tmp_path):
    sweep = compose_config([f"experiment={name}"], hydra=True).hydra.sweeper.params
    assert sweep, "an experiment is a comparison: it says what to sweep"
    cfg = compose_config([f"experiment={name}", *ONE_EPOCH], tmp_path / "run")
    metrics = train(cfg)
    assert metrics["epochs"] == 1 and 0 <= metrics["test/acc"] <= 1


@pytest.mark.parametrize("axis", ["model.activation=maxout", "model.activation=sigmoid"])
def test_vanishing_gradient_logs_gradient_flow(axis, tmp_path):
    cfg = compose_config(["experiment=vanishing_gradient", axis, *ONE_EPOCH], tmp_path / "run")
    train(cfg)
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    layers = cfg.model.depth + 1
    assert {f"~gradients/layer_{i}" for i in (1, layers)} <= set(events.Tags()["scalars"])


@pytest.mark.parametrize("name", REMEDIES)
def test_overfitting_remedies_change_what_they_say(name, tmp_path):
    cfg = compose_config(["experiment=overfitting", f"remedy={name}", *ONE_EPOCH], tmp_path / "run")
    changed = {
        "none": cfg.regularizer.weight_decay == 0 and cfg.model.dropout == 0 and cfg.data.augment.rotate == 0,
        "weight_decay": cfg.regularizer.weight_decay > 0,
        "early_stopping": cfg.regularizer.early_stopping.patience is not None,
        "augmentation": cfg.data.augment.rotate > 0,
        "dropout": cfg.model.dropout > 0,
    }
    assert changed[name]
    assert cfg.data.train_size == 200
    train(cfg)


def test_dropout_ensemble_scores_sub_networks_after_training(tmp_path):
    cfg = compose_config(["experiment=dropout_ensemble", "model.width=32", *ONE_EPOCH], tmp_path / "run")
    train(cfg)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [row["n"] for row in report["subnetworks"]] == [1, 2, 5, 10, 20, 50, 100]
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    kl = events.Scalars("~subnetworks/dropout/arithmetic/kl")
    assert [e.step for e in kl] == [1, 2, 5, 10, 20, 50, 100] and all(e.value >= 0 for e in kl)
