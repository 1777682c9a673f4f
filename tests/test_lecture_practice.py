"""The practical slides' studies: each one's own computations against a reference, its figures
against the report's conventions, and each study run in --quick mode (slow)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from matplotlib.colors import to_rgba_array

from dltips.config.validate import compose_train
from dltips.data import prepare
from dltips.nn import MSELoss
from dltips.observe.plots import COLORS
from lecture.figures_practice import (
    bounded_output_figure,
    learning_rate_figure,
    more_data_figure,
    normalized_test_figure,
)
from lecture.lab import Lab, Run, Section
from lecture.practice import (
    SIZES,
    SLIDES,
    best_rate,
    final_loss,
    finite_fmt,
    loss_per_update,
    output_layer,
    rises,
    updates_per_epoch,
)
from lecture.trained import accuracy
from lecture.training_statistics import BATCHES, DRAWS, own_batch_accuracy, own_statistics


def test_the_four_slides_have_a_study():
    assert list(SLIDES) == ["learning_rate_size", "test_normalization", "more_data", "bounded_output"]


# 1. The learning rate's size.


def fake_run(losses: list[float], final: float | None) -> Run:
    return Run({"train/loss": final}, {"train/loss": list(enumerate(losses, start=1))}, Path("seed0"))


def test_the_loss_per_update_starts_before_the_first_update_and_ends_after_the_last():
    assert loss_per_update(fake_run([2.3, 1.2, 0.8], 0.5)) == [2.3, 1.2, 0.8, 0.5]
    assert loss_per_update(fake_run([2.3, 40.0], None)) == [2.3, 40.0]  # overflowed: stopped, no final loss
    assert final_loss(fake_run([2.3], 0.5)) == 0.5 and final_loss(fake_run([2.3, 40.0], None)) == math.inf


def test_rises_counts_the_updates_after_which_the_loss_is_higher():
    assert rises([3.0, 2.0, 1.0, 0.5]) == 0
    assert rises([3.0, 2.0, 2.5, 1.0, 1.0, 1.2]) == 2  # equal is not a rise
    assert rises([3.0, 2.0, math.inf, math.nan]) == 2  # overflowed: risen
    assert rises([1.0]) == 0


def test_a_loss_that_exploded_is_shown_as_its_range_and_overflowed_seeds_are_counted():
    assert finite_fmt([1e30, 5e33]) == "1.0e+30 to 5.0e+33"
    assert finite_fmt([0.5, math.inf]) == "0.5000 ± 0.0000 (overflowed in 1/2 seeds)"
    assert finite_fmt([math.inf, math.inf]) == "— (overflowed in 2/2 seeds)"
    assert finite_fmt([0.9, 0.9, math.inf], 3) == "0.900 ± 0.000 (overflowed in 1/3 seeds)"  # a test accuracy


@functools.cache
def experiment(name: str):
    """An experiment's composed config (composing takes most of a second: once per experiment)."""
    return compose_train([f"experiment={name}"], None)


def training_rows(name: str, train_size: int | None = None, split_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split the experiment's data config gives (raw inputs, labels)."""
    d = experiment(name).data
    return prepare(
        instantiate(d.source),
        seed=split_seed,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        train_size=train_size,
        normalize="none",
        device="cpu",
    ).train


@pytest.mark.parametrize("split_seed", [0, 3])
def test_every_update_takes_the_whole_training_split(split_seed):
    cfg = experiment("learning_rate_size")
    _, y = training_rows("learning_rate_size", split_seed=split_seed)
    assert cfg.data.batch_size == len(y) and cfg.trainer.log_every_n_steps == 1


# 2. The test data normalized with the training statistics.


def test_own_statistics_are_the_standardization_written_out():
    raw = torch.tensor([[1.0, 10.0, 5.0], [2.0, 30.0, 5.0], [4.0, 20.0, 5.0], [5.0, 60.0, 5.0]])
    expected = torch.empty_like(raw)
    for j in range(raw.shape[1]):
        column = raw[:, j].tolist()
        m = sum(column) / len(column)
        s = math.sqrt(sum((v - m) ** 2 for v in column) / (len(column) - 1))  # over n − 1, as the library
        for i, v in enumerate(column):
            expected[i, j] = (v - m) / (s if s > 0 else 1.0)  # a constant feature keeps its scale
    assert torch.allclose(own_statistics(raw), expected)


def test_own_batch_accuracy_scores_random_batches_and_leaves_the_partial_one_out():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    raw, y = torch.randn(10, 3) * 5 + 2, torch.randint(0, 2, (10,))
    g, correct = torch.Generator().manual_seed(0), 0
    for _ in range(DRAWS):  # the same seeded partitions, written out: two batches of 4, 2 rows left out
        order = torch.randperm(10, generator=g)
        for idx in (order[0:4], order[4:8]):
            correct += int((model(own_statistics(raw[idx])).argmax(dim=1) == y[idx]).sum())
    assert own_batch_accuracy(model, raw, y, rows=4) == pytest.approx(correct / (DRAWS * 8))
    # Standardizing does not depend on the rows' order: batches of the whole set score as its own statistics.
    assert own_batch_accuracy(model, raw, y, rows=10) == pytest.approx(accuracy(model, own_statistics(raw), y))
    assert BATCHES[0] < BATCHES[1]


# 3. More training data.


def test_train_size_subsets_have_that_many_rows_and_are_nested():
    subsets = {n: training_rows("more_data_mnist1d", n) for n in SIZES[:3]}
    _, full_y = training_rows("more_data_mnist1d")
    assert len(full_y) == SIZES[-1]
    share = torch.bincount(full_y, minlength=10) / len(full_y)
    for n, (x, y) in subsets.items():
        assert len(x) == len(y) == n
        assert (torch.bincount(y, minlength=10) - n * share).abs().max() < 1  # stratified: each class its share
    for small, large in zip(SIZES, SIZES[1:3]):
        a, b = subsets[small][0], subsets[large][0]
        assert (a[:, None, :] == b[None, :, :]).all(dim=2).any(dim=1).all()  # every small row is in the larger


def test_every_training_size_gets_the_same_number_of_updates():
    batch_size = experiment("more_data_mnist1d").data.batch_size
    for epochs in (10, 20):  # quick and full
        updates = epochs * updates_per_epoch(SIZES[-1], batch_size)
        for n in SIZES:
            per_epoch = updates_per_epoch(n, batch_size)
            assert math.ceil(updates / per_epoch) * per_epoch == updates, n


# 4. A bounded output layer.


@pytest.mark.parametrize("output", ["identity", "sigmoid", "softmax"])
def test_the_output_layer_is_what_the_quadratic_cost_applies(output):
    torch.manual_seed(0)
    z, target = torch.randn(6, 4) * 3, torch.tensor([0, 1, 2, 3, 0, 1])
    y = output_layer(z, output)
    onehot = torch.nn.functional.one_hot(target, 4).float()
    torch.testing.assert_close(MSELoss(output)(z, target), 0.5 * ((y - onehot) ** 2).sum(dim=1).mean())
    assert output == "identity" or bool(((y > 0) & (y < 1)).all())


def test_the_best_rate_counts_a_diverged_seed_as_zero():
    def runs(*val):
        return [Run({"val/acc": v}, {}, Path("x")) for v in val]

    assert best_rate({0.1: runs(0.9, 0.9), 1.0: runs(0.99, None)}) == 0.1
    assert best_rate({0.1: runs(0.9, 0.9), 1.0: runs(0.95, 0.93)}) == 1.0


# The figures, built from small fake inputs.


FIGURES = {
    "learning_rate_size": lambda: learning_rate_figure(
        {
            "too small": [[2.3, 2.2, 2.1], [2.3, 2.25, 2.2]],
            "good": [[2.3, 1.0, 0.5], [2.3, 1.1, 0.6]],
            "too large": [[2.3, 40.0, 1e6], [2.3, 30.0]],
        },
        {"too small": 0.1, "good": 1.0, "too large": 10.0},
    ),
    "test_normalization": lambda: normalized_test_figure(
        {
            d: {
                "training statistics": [0.95, 0.97],
                "own, batches of 4": [0.8, 0.85],
                "own, whole test set": [0.94, 0.96],
                "raw inputs": [0.4, 0.35],
            }
            for d in ("wine", "breast_cancer")
        },
        {"wine": 27, "breast_cancer": 86},
    ),
    "more_data": lambda: more_data_figure(
        (225, 450, 900), {225: [0.3, 0.32], 450: [0.4, 0.41], 900: [0.5, 0.5]}, {n: [1.0, 1.0] for n in (225, 450, 900)}
    ),
    "bounded_output": lambda: bounded_output_figure(
        {o: {0.1: [0.9, 0.92], 1.0: [0.95, 0.97]} for o in ("identity", "sigmoid", "softmax")},
        {"identity": 0.1, "sigmoid": 1.0, "softmax": 1.0},
        {"identity": np.linspace(-0.8, 1.8, 50), "sigmoid": np.linspace(0.01, 0.99, 50), "softmax": np.full(50, 0.1)},
    ),
}


def drawn_colour(artist) -> np.ndarray:
    """The RGB a line, bar, band or outline is drawn in."""
    if hasattr(artist, "get_color") and not hasattr(artist, "get_facecolor"):
        return to_rgba_array(artist.get_color())[0, :3]
    filled = getattr(artist, "get_fill", lambda: True)()
    return to_rgba_array(artist.get_facecolor() if filled else artist.get_edgecolor())[0, :3]


@pytest.mark.parametrize("name", FIGURES)
def test_a_name_with_a_colour_of_its_own_is_drawn_in_it(name):
    named = 0
    for ax in FIGURES[name]().axes:
        for artist in [*ax.lines, *ax.patches, *ax.collections]:
            if artist.get_gid() in COLORS:
                assert np.allclose(drawn_colour(artist), to_rgba_array(COLORS[artist.get_gid()])[0, :3]), name
                named += 1
    assert named > 0 or name in ("learning_rate_size", "more_data")  # nothing there has a colour of its own


@pytest.mark.slow  # the four studies at 2 seeds and half their training: about a minute
@pytest.mark.parametrize("name", SLIDES)
def test_each_study_runs_quick_and_returns_sections_with_their_figure(name, tmp_path):
    lab = Lab(tmp_path, quick=True, seeds=2)
    result = SLIDES[name](lab)
    sections = result if isinstance(result, list) else [result]
    assert sections and all(isinstance(s, Section) for s in sections)
    for s in sections:
        assert s.rule and s.headline and s.table.startswith("| ")
        assert (tmp_path / "figures" / s.figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
