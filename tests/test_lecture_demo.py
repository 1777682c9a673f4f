"""The lecture's Keras demo as a chain: its settings are the lecture's, and each step's verdict
follows its direction rule (checked on made-up accuracies, without training)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dltips.nn import MSELoss
from lecture.keras_demo import CHANCE_BOUND, STEPS, TRAIN, VARIANTS, Step, judge
from lecture.lab import Lab


def test_the_demo_network_is_the_lectures(make_cfg):
    cfg = make_cfg("experiment=keras_demo", fast=False)
    assert cfg.data.source._target_ == "dltips.data.load_mnist5k" and cfg.data.normalize == "none"  # pixels / 255
    assert (cfg.model.depth, cfg.model.width, cfg.model.activation, cfg.model.init) == (3, 633, "sigmoid", "xavier")
    assert cfg.loss._target_ == "dltips.nn.MSELoss" and cfg.loss.output == "softmax"
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.get("momentum", 0) == 0  # plain SGD
    assert (cfg.data.batch_size, cfg.trainer.max_epochs) == (100, 20)


def test_our_rate_for_the_quadratic_cost_takes_kerass_step(make_cfg):
    """Keras's mse is the mean of the 10 squared errors: its step at η = 0.1 is ours at the experiment's η."""
    lr = make_cfg("experiment=keras_demo", fast=False).optimizer.lr
    torch.manual_seed(0)
    z, y = torch.randn(100, 10, requires_grad=True), torch.randint(0, 10, (100,))
    (keras,) = torch.autograd.grad((torch.softmax(z, 1) - torch.eye(10)[y]).pow(2).mean(), z)
    (ours,) = torch.autograd.grad(MSELoss("softmax")(z, y), z)
    torch.testing.assert_close(0.1 * keras, lr * ours)


def test_the_demo_splits_into_the_training_set_the_report_names(make_cfg):
    from dltips.engine.build import setup

    s = setup(make_cfg("experiment=keras_demo", "trainer.max_epochs=1", fast=False))
    assert (len(s.splits.train[1]), len(s.splits.test[1])) == (TRAIN, 1000)


def acc(**values) -> dict:
    return {tuple(k.split("__")): v for k, v in values.items()}


UP = Step("change", "rises", ("b", "train"), ("a", "train"), 1)
DOWN = Step("change", "falls", ("b", "train"), ("a", "train"), -1)


@pytest.mark.parametrize(
    "step, b, held",
    [
        (UP, [0.5, 0.6, 0.7], True),
        (UP, [0.2, 0.3, 0.1], False),  # not above a
        (DOWN, [0.1, 0.1, 0.2], True),
        (DOWN, [0.5, 0.6, 0.7], False),
        (DOWN, [math.nan] * 3, True),  # every seed diverged: the change made it fail
        (UP, [math.nan] * 3, False),
    ],
)
def test_a_step_holds_when_its_paired_difference_moves_the_lectures_way(step, b, held):
    section = judge(step, acc(a__train=[0.3, 0.31, 0.29], b__train=b), 3, None, "")
    assert section.held is held
    assert ("diverged" in section.headline) is bool(np.isnan(b).all())


def test_does_not_train_means_the_whole_interval_under_the_bound():
    step = Step("start", "does not train", ("a", "train"))
    low = judge(step, acc(a__train=[0.10, 0.11, 0.12], a__test=[0.1] * 3), 3, None, "")
    spread = judge(step, acc(a__train=[0.10, 0.11, 0.35], a__test=[0.1] * 3), 3, None, "")
    assert low.held and not spread.held and str(CHANCE_BOUND) in low.rule


def test_every_step_compares_networks_the_chain_trains():
    for study, steps in STEPS.items():
        for s in steps:
            assert s.measured[0] in VARIANTS[study] and (s.against is None or s.against[0] in VARIANTS[study])


@pytest.mark.slow
def test_the_chain_runs_quick(tmp_path):
    from lecture.keras_demo import keras_demo_deep

    sections = keras_demo_deep(Lab(tmp_path, quick=True, seeds=2))
    assert len(sections) == len(STEPS["keras_demo_deep"])
    assert sections[0].figure and all(not s.figure for s in sections[1:])  # one figure for the chain
    assert (tmp_path / "figures" / sections[0].figure).read_bytes()[:4] == b"\x89PNG"
    assert "every seed diverged" in sections[-1].headline and sections[-1].held  # 0…255 pixels: NaN in a few steps
