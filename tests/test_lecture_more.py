"""The rest of the lecture's claims: the maths behind each study checked two ways, and each study
run in --quick mode (slow)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dltips.nn import MLP, Maxout
from dltips.observe.plots import COLORS
from dltips.observe.tags import LR
from dltips.train import train
from lecture import reproduce
from lecture.adagrad import SEQUENCES, adagrad_steps, hessian_diagonal
from lecture.dropout_advice import corrected
from lecture.figures_training import (
    adagrad_contrast_figure,
    dropout_advice_figure,
    early_stopping_figure,
    lr_decay_figure,
    noise_figure,
)
from lecture.figures_units import dead_units_figure, piece_wins_figure
from lecture.lab import Run, sample
from lecture.maxout import piece_statistics
from lecture.nielsen import nielsen_cost
from lecture.regularization import stopping_epoch
from lecture.surfaces import SURFACES, lecture_optimizer, optimizer_factory, trajectory
from lecture.trajectories import trajectories_figure

REPO = Path(__file__).resolve().parents[1]
NEW_STUDIES = [
    "dead_relu",
    "maxout",
    "adagrad",
    "momentum_surfaces",
    "lr_decay",
    "weight_decay_noise",
    "early_stopping",
    "dropout_advice",
]


# ReLU is maxout with two pieces, one held at zero.


def test_a_zero_piece_maxout_is_relu_forward_and_backward():
    torch.manual_seed(0)
    relu = nn.Linear(5, 4)
    maxout = Maxout(5, 4, pieces=2, zero_piece=True)
    maxout.linear.load_state_dict(relu.state_dict())
    with torch.no_grad():
        relu.bias[0] = maxout.linear.bias[0] = 0.0
    x = torch.randn(64, 5)
    x[0] = 0.0  # z = 0 exactly in unit 0: the tie ReLU's derivative settles at 0
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = torch.relu(relu(x1)), maxout(x2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    w = torch.randn_like(a)
    (a * w).sum().backward()
    (b * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=0)
    torch.testing.assert_close(relu.weight.grad, maxout.linear.weight.grad, rtol=0, atol=0)
    torch.testing.assert_close(relu.bias.grad, maxout.linear.bias.grad, rtol=0, atol=0)


def test_the_zero_piece_is_off_by_default_and_holds_no_parameters():
    assert Maxout(3, 4, pieces=2).linear.out_features == 8
    assert Maxout(3, 4, pieces=3, zero_piece=True).linear.out_features == 8  # two learned pieces, one fixed
    z = Maxout(3, 4, pieces=3, zero_piece=True).pre_activation(torch.randn(7, 3))
    assert z.shape == (7, 4, 3) and (z[..., 0] == 0).all()
    with pytest.raises(ValueError, match="model.zero_piece"):
        MLP(3, 2, depth=1, width=4, activation="maxout", zero_piece="yes")


def test_from_the_same_seed_relu_and_zero_piece_maxout_networks_start_and_train_the_same(make_cfg):
    common = ["model.depth=2", "model.width=16", "model.pieces=2", "model.zero_piece=true"]
    relu = train(make_cfg(*common, "model.activation=relu"))
    maxout = train(make_cfg(*common, "model.activation=maxout"))
    for key in ("train/loss", "val/loss", "test/loss", "test/acc"):
        assert relu[key] == maxout[key], key


# Adagrad: the contrast and the second derivative.


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_adagrad_steps_are_the_formula_written_out(name):
    gradients, lr, eps = SEQUENCES[name], 0.3, 1e-10  # eps: Adagrad's default, added to σ^t
    # η^t = η/√(t+1), σ^t = √(Σ_{i≤t} (g^i)² / (t+1)): the step is η^t·g^t/σ^t = η·g^t/√Σ_{i≤t} (g^i)²
    expected = [
        lr / math.sqrt(t + 1) * abs(g) / (math.sqrt(sum(h * h for h in gradients[: t + 1]) / (t + 1)) + eps)
        for t, g in enumerate(gradients)
    ]
    assert adagrad_steps(gradients, lr) == pytest.approx(expected, rel=1e-9)


def test_the_same_last_gradient_gets_steps_hundreds_of_times_apart():
    small, large = (adagrad_steps(seq)[-1] for seq in SEQUENCES.values())
    assert small / large > 100


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_hessian_diagonal_matches_the_full_hessian(activation):
    torch.manual_seed(0)
    model = MLP(3, 3, depth=2, width=4, activation=activation).double()
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randint(0, 3, (20,))
    named = dict(model.named_parameters())  # W¹, b¹, W², b², W³, b³: the order hessian_diagonal returns
    flat = torch.cat([p.detach().flatten() for p in named.values()])

    def loss(w: torch.Tensor) -> torch.Tensor:
        sizes = [p.numel() for p in named.values()]
        pieces = {n: t.view_as(p) for (n, p), t in zip(named.items(), w.split(sizes))}
        return nn.functional.cross_entropy(torch.func.functional_call(model, pieces, (x,)), y)

    full = torch.autograd.functional.hessian(loss, flat).diagonal()
    ours = torch.cat([t.flatten() for pair in hessian_diagonal(model, x, y) for t in pair])
    torch.testing.assert_close(ours, full)


# Surfaces and the optimizers on them.


@pytest.mark.parametrize("name", list(SURFACES))
def test_surface_gradients_match_autograd(name):
    surface = SURFACES[name]
    p = (torch.rand(50, 2, dtype=torch.float64) * 4 - 2).requires_grad_()
    surface.fn(p).sum().backward()
    torch.testing.assert_close(surface.grad(p.detach()), p.grad)


def test_a_trajectory_takes_the_configs_optimizer_steps():
    surface, lr = SURFACES["two_minima"], 0.01
    path = trajectory(surface.fn, lecture_optimizer("sgd", lr), surface.start, 3)
    p = torch.tensor(surface.start, dtype=torch.float64)
    for t in range(1, 4):
        p = p - lr * surface.grad(p)
        np.testing.assert_allclose(path[t], p.numpy())
    make = optimizer_factory(["optimizer=momentum", "optimizer.lr=0.02"])
    assert type(make([torch.zeros(2, requires_grad=True)])).__name__ == "Momentum" and make.keywords["lr"] == 0.02


# Maxout's pieces, early stopping's rule.


def test_piece_statistics_count_winners_and_patterns():
    torch.manual_seed(0)
    model = MLP(4, 3, depth=2, width=5, activation="maxout", pieces=3).eval()
    shares, winning, patterns = piece_statistics(model, torch.randn(200, 4))
    assert [len(s) for s in shares] == [15, 15]
    for s in shares:  # each unit's pieces share the examples out between them
        np.testing.assert_allclose(s.reshape(5, 3).sum(axis=1), 1.0, rtol=1e-6)
    assert all(0 < w <= 1 for w in winning) and 1 <= patterns <= 200


def test_stopping_epoch_waits_patience_epochs_after_the_minimum():
    assert stopping_epoch([3, 2, 1, 2, 3, 4, 5, 6, 7], patience=5) == 7
    assert stopping_epoch([3, 2, 1, 0.5], patience=5) == 3  # never: the last epoch


def test_the_new_figures_draw_with_the_names_colours():
    fig = dead_units_figure(
        {"relu": np.full((2, 3), 0.4), "prelu": np.full((2, 3), 0.1)},
        {"relu": [0.8, 0.9], "prelu": [0.9, 0.95]},
        ("prelu",),
    )
    drawn = {a.get_gid(): a.get_facecolor() for ax in fig.axes for a in ax.patches if a.get_gid()}
    assert set(drawn) == {"relu", "prelu"}
    piece_wins_figure([np.array([0.5, 0.3, 0.2, 0.0])], np.array([[0.75], [1.0]]), 0.01)
    adagrad_contrast_figure(
        SEQUENCES, {k: list(v) for k, v in SEQUENCES.items()}, {k: adagrad_steps(v) for k, v in SEQUENCES.items()}, 400
    )
    noise_figure(
        {"none": np.ones((2, 3)), "weight_decay": np.ones((2, 3))},
        {"none": np.zeros((2, 3)), "weight_decay": np.zeros((2, 3))},
        (0, 1, 2),
    )
    curves = {"train/loss_epoch": [2, 1, 0.5], "val/loss": [2, 1.5, 1.8], "train/acc": [0.5, 0.7, 0.9]}
    fig = early_stopping_figure([curves | {"val/acc": [0.4, 0.6, 0.62]}] * 2, [1, 1], [3, 3], [0.58, 0.6], [0.62, 0.63])
    loss, accuracy = fig.axes  # the claim's two parts: the loss and the accuracy at the stopping point
    assert "Loss" in loss.get_title() and "Accuracy" in accuracy.get_title() and accuracy.get_ylim() == (0.0, 1.0)
    assert any(t.get_text().startswith("test, kept weights: 0.590") for t in accuracy.texts)
    fig = dropout_advice_figure(
        {
            "no dropout, 64 units": [0.6, 0.61],
            "no dropout, 128 units": [0.62, 0.63],
            "dropout 0.5, 64 units": [0.5, 0.52],
        },
        "no dropout, 64 units",
        "no dropout, 128 units",
    )
    assert sorted(line.get_ydata()[0] for line in fig.axes[0].lines if line.get_ls() in ("--", ":")) == pytest.approx(
        [0.605, 0.625]
    )
    assert COLORS["dropout"] and COLORS["none"]
    runs = {
        s: [
            Run(
                {},
                {"train/loss_epoch": [(e, 1.0 / (e + 1)) for e in range(4)], LR: [(e, 0.5) for e in range(4)]},
                Path("s0"),
            )
        ]
        for s in ("constant", "inverse_sqrt")
    }
    for ax in lr_decay_figure(runs).axes:
        assert all(t == int(t) for t in ax.get_xticks())  # epochs: no tick at 2.5
    assert lr_decay_figure(runs).axes[1].get_ylabel() == r"$\eta^t$"  # mathtext, not a literal caret


def test_every_path_of_the_trajectories_figure_is_in_view_or_marked_where_it_leaves():
    saddle = SURFACES["saddle"]
    runaway = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 5.0], [0.1, 1e3]])  # a saddle is unbounded
    wide = np.array([[1.0, 0.0], [0.0, -1.5], [0.0, 0.0]])  # out of the box and back
    fig = trajectories_figure({"saddle": {"sgd": wide, "momentum": runaway}}, {"saddle": saddle.lr})
    (ax,) = fig.axes
    assert (
        ax.get_ylim()[0] < -1.5 and ax.get_ylim()[1] < 5.0
    )  # widened to the path that comes back, not the one that runs
    (triangle,) = [line for line in ax.lines if line.get_gid() == "momentum" and len(line.get_xdata()) == 1]
    assert triangle.get_marker() == "^" and triangle.get_ydata()[0] == pytest.approx(ax.get_ylim()[1])
    assert min(t.get_fontsize() for t in fig.legends[0].get_texts()) >= 10  # readable in the 72-dpi GIF


# Each study in --quick mode, and the command users run.


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_STUDIES)
def test_each_new_study_runs_quick(name, tmp_path):
    report = reproduce(tmp_path, quick=True, only=[name]).read_text()
    assert "**Rule.**" in report and re.search(
        r"\*\*Verdict: (held|did not hold) \(quick run: not evidence\)\*\*", report
    )
    figures = [line.split("](figures/")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert figures and all((tmp_path / "figures" / f).read_bytes()[:4] == b"\x89PNG" for f in figures)


@pytest.mark.slow
def test_the_trajectories_command_draws_any_optimizer(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "trajectories.py"),
            "optimizer=rmsprop",
            "optimizer.lr=0.01",
            "--surface",
            "saddle",
            "--steps",
            "50",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "rmsprop" in result.stdout
    assert (tmp_path / "trajectories.gif").read_bytes()[:6] == b"GIF89a"


def test_nielsens_1000_images_are_drawn_from_every_class():
    # The mnist5k split keeps the class-sorted file's order: its first 1,000 images are the
    # digits 0, 1 and 2 alone, which skewed the study's gradients.
    from dltips.config.validate import compose_train
    from dltips.engine.build import setup
    from lecture.nielsen import BATCH

    s = setup(compose_train(["experiment=vanishing_gradient_nielsen", "data.split_seed=0", "seed=0"]))
    _, y = s.splits.train
    assert len(torch.unique(y[:BATCH])) < 10  # the order the study must not take
    counts = torch.bincount(y[sample(len(y), BATCH, 0)], minlength=10)
    assert counts.sum() == BATCH and counts.min() >= 0.05 * BATCH and counts.max() <= 0.15 * BATCH


def test_the_studies_never_take_the_first_rows_of_a_split():
    # A split lists its rows in the file's order (mnist5k: sorted by class), so `x[:n]` of a split
    # is a skewed sample; the studies draw theirs with lecture.lab.sample.
    slices = re.compile(r"\b(x|y|train|test|val|splits\.\w+(\[\d\])?)\[\s*:\s*[A-Za-z0-9_]")
    found = [
        f"{path.name}:{i}: {line.strip()}"
        for path in sorted((REPO / "lecture").glob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if slices.search(line)
    ]
    assert found == []
    assert slices.search("only_winners_trained(model, x[:CHECKED], y[:CHECKED])")  # the form it catches
    drawn = sample(1000, 32, seed=3)
    assert len(set(drawn.tolist())) == 32 and drawn.tolist() != list(range(32))
    assert torch.equal(drawn, torch.randperm(1000, generator=torch.Generator().manual_seed(3))[:32])


def test_nielsens_cost_is_his_cross_entropy_of_sigmoid_outputs_written_out():
    torch.manual_seed(0)
    z, y = torch.randn(7, 10, dtype=torch.float64), torch.randint(0, 10, (7,))
    a, onehot = torch.sigmoid(z), nn.functional.one_hot(y, 10).double()
    expected = -(onehot * a.log() + (1 - onehot) * (1 - a).log()).sum(dim=1).mean()  # network2.py's fn, per image
    torch.testing.assert_close(nielsen_cost(z, y), expected)
    # with one image and one output it is −ln σ(z) for the target
    torch.testing.assert_close(
        nielsen_cost(torch.tensor([[2.0]]), torch.tensor([0])), -torch.log(torch.sigmoid(torch.tensor(2.0)))
    )


def test_the_advices_intervals_are_bonferroni_corrected_t_intervals():
    from scipy import stats

    a, b = [0.61, 0.63, 0.60, 0.64, 0.62], [0.60, 0.60, 0.61, 0.62, 0.60]
    d = np.subtract(a, b)
    m, low, high = corrected(a, b, comparisons=4)
    half = stats.t.ppf(1 - 0.05 / 4 / 2, df=4) * d.std(ddof=1) / np.sqrt(5)  # 98.75% two-sided
    assert m == pytest.approx(d.mean()) and (low, high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert corrected(a, b, comparisons=1)[1] > low  # one comparison: the plain, narrower 95% interval


def test_a_piece_is_trained_only_where_it_wins_its_share_of_the_examples():
    # One unit, two pieces: the second wins where x > 0.995, 5 of the 1,000 inputs, under 1%.
    model = MLP(1, 2, depth=1, width=1, activation="maxout", pieces=2).eval()
    with torch.no_grad():
        model.net[0].linear.weight.copy_(torch.tensor([[0.0], [1.0]]))
        model.net[0].linear.bias.copy_(torch.tensor([0.995, 0.0]))
    x = torch.linspace(0, 1, 1000)[:, None]
    shares, trained, _ = piece_statistics(model, x)
    np.testing.assert_allclose(shares[0], [0.995, 0.005], atol=1e-3)
    assert trained == [0.5]  # the second piece wins, but not on 1% of the examples
    assert piece_statistics(model, x, least=0.0)[1] == [1.0]  # the old count: it won once, so it "trained"
