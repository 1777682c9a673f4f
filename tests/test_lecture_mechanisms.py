"""The five mechanism studies: each measurement against a reference (torch's built-in or the formula
written out), their figures from small fake inputs, and each study run quick."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba_array
from torch.testing import assert_close

from dltips.nn import MLP, Dropout, PReLU
from dltips.observe.plots import COLORS
from dltips.optim import Momentum
from dltips.optim.param_groups import param_groups
from lecture.dropout_masks import recorded_masks, weight_scaled
from lecture.figures_mechanisms import (
    dropout_masks_figure,
    maxout_variants_figure,
    momentum_sum_figure,
    relu_fast_figure,
    weight_decay_update_figure,
)
from lecture.lab import Lab, Section
from lecture.mechanisms import SLIDES, as_maxout, gaps, maxout_network, outputs_and_gradients, time_activations
from lecture.mechanisms_updates import decay_check, momentum_trace, relative, weighted_sum


def test_the_slides_are_the_five_mechanisms():
    assert list(SLIDES) == [
        "relu_variants_maxout",
        "relu_fast",
        "momentum_sum",
        "weight_decay_update",
        "dropout_resampled",
    ]


# 1. Leaky ReLU and PReLU as 2-piece maxout


def test_a_maxout_built_from_a_linear_layer_is_torchs_leaky_relu_and_prelu_of_it():
    torch.manual_seed(0)
    linear, x = torch.nn.Linear(5, 4), torch.randn(64, 5)
    alpha = torch.tensor([0.01, 0.25, -0.3, 1.0])  # α ≤ 1, a negative one too
    with torch.no_grad():
        assert_close(as_maxout(linear, torch.full((4,), 0.01))(x), torch.nn.functional.leaky_relu(linear(x), 0.01))
        assert_close(as_maxout(linear, alpha)(x), torch.nn.functional.prelu(linear(x), alpha))
        assert_close(as_maxout(linear, torch.zeros(4))(x), torch.relu(linear(x)))


def test_at_a_tie_the_maxout_form_routes_alpha_as_leaky_relu_does():
    linear = torch.nn.Linear(3, 2)
    with torch.no_grad():
        linear.bias.zero_()
    x = torch.zeros(1, 3, requires_grad=True)  # z = 0 exactly
    (maxout,) = torch.autograd.grad(as_maxout(linear, torch.full((2,), 0.01))(x).sum(), x)
    (leaky,) = torch.autograd.grad(torch.nn.functional.leaky_relu(linear(x), 0.01).sum(), x)
    assert_close(maxout, leaky)
    assert_close(leaky, 0.01 * linear.weight.sum(dim=0, keepdim=True))  # torch's leaky_relu: α at z = 0


@pytest.mark.parametrize("activation", ["leaky_relu", "prelu"])
def test_a_network_and_its_maxout_form_give_the_same_logits_and_input_gradients(activation):
    torch.manual_seed(0)
    model = MLP(6, 3, depth=2, width=8, activation=activation)
    for m in model.modules():
        if isinstance(m, PReLU):
            with torch.no_grad():
                m.slope.uniform_(-0.5, 1.0)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    (a, ga), (b, gb) = outputs_and_gradients(model, x, y), outputs_and_gradients(maxout_network(model), x, y)
    assert_close(a, b)
    assert_close(ga, gb)
    ref = torch.func.vmap(torch.func.grad(lambda v, t: torch.nn.functional.cross_entropy(model(v[None]), t[None])))
    assert_close(ga, ref(x, y))  # each row its own example's ∂C/∂x
    assert max(gaps(model, x, y)) < 1e-5 < min(gaps(model, x, y, zero=True))  # the control differs


def test_the_timing_times_every_activation_once_per_repetition():
    times = time_activations((4, 8), reps=3, calls=1)
    assert set(times) == {"sigmoid", "tanh", "relu", "softplus", "leaky_relu", "prelu"}
    assert all(len(t) == 3 and (t > 0).all() for t in times.values())


# 3. Momentum's weighted sum


def test_the_weighted_sum_is_torchs_sgd_momentum_velocity_step_by_step():
    lr, lam = 0.1, 0.9
    grads = torch.randn(12, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    sgd, v = torch.optim.SGD([p], lr=lr, momentum=lam), weighted_sum(grads, lr, lam)
    for t, g in enumerate(grads):
        p.grad = g.clone()
        sgd.step()
        assert_close(-lr * sgd.state[p]["momentum_buffer"], v[t])  # torch's buffer b: v = −η·b
        assert_close(p.detach(), v[: t + 1].sum(dim=0))  # θ^t − θ^0 = Σ v
    assert relative(v, weighted_sum(grads, lr, 0.8)).max() > 1e-2  # another λ is not the same sum


def fake_setup(model, optimizer, rows: int = 96):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(rows, 6, generator=g), torch.randint(0, 3, (rows,), generator=g)
    return SimpleNamespace(
        model=model, optimizer=optimizer, loss_fn=torch.nn.CrossEntropyLoss(), splits=SimpleNamespace(train=(x, y))
    )


def test_our_momentums_velocity_and_movement_are_the_weighted_sum_of_the_traced_gradients():
    torch.manual_seed(0)
    model = MLP(6, 3, depth=1, width=8, activation="relu").double()
    grads, velocities, thetas = momentum_trace(fake_setup(model, Momentum(model.parameters(), 0.05, 0.9)), 10, 0)
    v = weighted_sum(grads, 0.05, 0.9)
    assert relative(velocities, v).max() < 1e-12 and relative(thetas[1:] - thetas[0], v.cumsum(dim=0)).max() < 1e-12
    assert relative(-0.05 * grads, v)[1:].min() > 1e-3  # the last gradient alone is not it


# 4. Weight decay's update


def test_the_librarys_weight_decay_step_is_the_formula_on_weights_only():
    torch.manual_seed(0)
    model = MLP(6, 3, depth=2, width=8, activation="relu")
    found = decay_check(fake_setup(model, torch.optim.SGD(param_groups(model, 0.01), lr=0.1)), 3, 0, 0.01)
    assert max(found["weights"].max(), found["biases"].max()) < 1e-6
    assert min(found["control: weights undecayed"].min(), found["control: biases decayed"].min()) > 1e-6


def test_the_weight_decay_check_catches_decayed_biases():
    torch.manual_seed(0)
    model = MLP(6, 3, depth=2, width=8, activation="relu")
    everything = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.01)  # no split: biases decay too
    assert decay_check(fake_setup(model, everything), 2, 0, 0.01)["biases"].min() > 1e-6


# 5. Dropout's masks


def test_dropout_draws_a_new_mask_per_update_and_tests_with_weights_scaled():
    torch.manual_seed(0)
    model, x = MLP(6, 3, depth=2, width=16, activation="relu", dropout=0.5), torch.randn(8, 6)
    with recorded_masks(model) as masks:
        for _ in range(20):
            model(x)
        assert [len(m) for m in masks] == [20, 20]
        assert all(len(torch.unique(torch.stack(m).flatten(1), dim=0)) == 20 for m in masks)
        assert abs(torch.stack(masks[0]).mean().item() - 0.5) < 0.05  # 2,560 draws: sd 0.01
        model.eval()
        assert_close(model(x), weight_scaled(model, x))
        assert (model(x) - weight_scaled(model, x, scale=False)).abs().max() > 1e-3
        assert [len(m) for m in masks] == [20, 20]  # nothing drawn at test
    assert all("sample_mask" not in vars(m) for m in model.modules() if isinstance(m, Dropout))


def test_weight_scaling_is_the_expectation_of_the_training_output():
    layer, x = Dropout(0.3), torch.rand(2, 4)
    sampled = torch.stack([layer(x) for _ in range(4000)]).mean(dim=0)
    assert_close(sampled, layer.eval()(x), atol=0.03, rtol=0)


# The figures, from small fake inputs


def per_seed(value: float, seeds: int = 3) -> list[float]:
    return [value * (1 + 0.1 * s) for s in range(seeds)]


FIGURES = {
    "relu_variants_maxout": lambda: maxout_variants_figure(
        0.3,
        {a: {"output": per_seed(1e-6), "input gradient": [0.0, 1e-7, 2e-7]} for a in ("leaky_relu", "prelu")},
        {a: {"output": per_seed(0.5), "input gradient": per_seed(0.1)} for a in ("leaky_relu", "prelu")},
        1e-5,
    ),
    "relu_fast": lambda: relu_fast_figure(
        {
            size: {a: np.array(per_seed(k * 1e-4, 5)) for k, a in enumerate(("sigmoid", "tanh", "relu", "prelu"), 1)}
            for size in ("256×1024", "32×128")
        },
        "256×1024",
    ),
    "momentum_sum": lambda: momentum_sum_figure(
        0.9,
        20,
        {
            "velocity": np.full((3, 20), 1e-16),
            "movement θ^t − θ^0": np.full((3, 20), 1e-15),
            "control: −η·∇C(θ^{t−1}) alone": np.full((3, 20), 0.8),
        },
        1e-5,
    ),
    "weight_decay_update": lambda: weight_decay_update_figure(
        {
            "weights": np.full((3, 5), 1e-8),
            "biases": np.zeros((3, 5)),
            "control: weights undecayed": np.full((3, 5), 2e-4),
            "control: biases decayed": np.full((3, 5), 2e-4),
        },
        {"none": per_seed(8.8), "weight_decay": per_seed(7.4)},
        1e-6,
    ),
    "dropout_resampled": lambda: dropout_masks_figure(
        (np.random.default_rng(0).random((16, 30)) > 0.5).astype(float),
        0.5 + 0.01 * np.random.default_rng(1).standard_normal((3, 30)),
        0.5,
    ),
}


@pytest.mark.parametrize("name", FIGURES)
def test_each_name_is_drawn_in_its_colour(name):
    for ax in FIGURES[name]().axes:
        drawn = [(a, a.get_color()) for a in ax.lines] + [(a, a.get_facecolor()) for a in ax.patches]
        for artist, colour in drawn:
            if artist.get_gid():
                assert_close(to_rgba_array(colour)[0, :3], to_rgba_array(COLORS[artist.get_gid()])[0, :3])


# Each study, quick


@pytest.mark.slow
@pytest.mark.parametrize("name", SLIDES)
def test_each_mechanism_study_runs_quick(name, tmp_path):
    found = SLIDES[name](Lab(tmp_path, quick=True, seeds=2))
    sections = found if isinstance(found, list) else [found]
    assert sections and all(isinstance(s, Section) for s in sections)
    for s in sections:
        assert s.rule and "would have failed" in s.rule and s.headline and s.table.startswith("|")
        assert (tmp_path / "figures" / s.figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
