"""dltips.observe.diagnostics against the lecture's backprop written out by hand on tiny nets.

Every expected value here is computed without autograd: the forward pass z^l = W^l a^{l−1} + b^l,
the backward pass δ^L = softmax(z^L) − onehot (softmax + cross-entropy), δ^l = σ'(z^l) ∘
(W^{l+1})ᵀ δ^{l+1}, ∂C/∂W^l = δ^l (a^{l−1})ᵀ and ∂C/∂b^l = δ^l, each averaged over the batch
(the loss is the batch mean). Layers are numbered like the lecture's l: 1 next to the input.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from dltips.nn import MLP, CrossEntropyLoss, Dropout, Maxout
from dltips.observe.diagnostics import GradientFlow, custom_scalars_layout, pre_activations, step_sizes, unit_statistics
from dltips.optim import Adagrad, Momentum
from dltips.train import train
from tests.conftest import compose_config

# σ and σ' of the lecture's activations, written out rather than taken from dltips.
SIGMA = {"sigmoid": lambda z: 1 / (1 + torch.exp(-z)), "tanh": torch.tanh}
SIGMA_PRIME = {
    "sigmoid": lambda z: SIGMA["sigmoid"](z) * (1 - SIGMA["sigmoid"](z)),
    "tanh": lambda z: 1 - torch.tanh(z) ** 2,
}

# A 3 → 4 → 4 → 2 net: every weight set by hand, no two layers alike.
W1 = [[0.5, -0.3, 0.8], [-0.6, 0.2, 0.4], [0.1, 0.9, -0.7], [0.3, -0.5, -0.2]]
B1 = [0.1, -0.2, 0.05, 0.0]
W2 = [[0.7, -0.4, 0.2, 0.6], [-0.3, 0.8, -0.5, 0.1], [0.4, 0.3, 0.9, -0.8], [-0.2, -0.6, 0.5, 0.3]]
B2 = [0.0, 0.3, -0.1, 0.2]
W3 = [[1.2, -0.7, 0.5, -0.9], [-0.4, 1.1, -0.8, 0.6]]
B3 = [0.05, -0.05]
X = [[1.0, -2.0, 0.5], [0.3, 0.8, -1.5], [-1.2, 0.4, 2.0]]
Y = [0, 1, 1]


def tiny_mlp(activation: str) -> MLP:
    model = MLP(in_features=3, out_features=2, depth=2, width=4, activation=activation).double()
    set_layers(model, [(W1, B1), (W2, B2), (W3, B3)])
    return model


def set_layers(model: MLP, weights: list[tuple[list, list]]) -> None:
    with torch.no_grad():
        for layer, (w, b) in zip(model.linears(), weights):
            layer.weight.copy_(torch.tensor(w, dtype=layer.weight.dtype))
            layer.bias.copy_(torch.tensor(b, dtype=layer.bias.dtype))


def hand_backprop(activation: str, x: torch.Tensor, y: torch.Tensor, ws: list, bs: list) -> tuple[list, list]:
    """(∂C/∂W^l, ∂C/∂b^l) for l = 1 … L, by the lecture's formulas, one sample at a time."""
    ws = [torch.as_tensor(w, dtype=torch.float64) for w in ws]
    bs = [torch.as_tensor(b, dtype=torch.float64) for b in bs]
    L, N = len(ws), len(x)
    grad_w = [torch.zeros_like(w) for w in ws]
    grad_b = [torch.zeros_like(b) for b in bs]
    for n in range(N):
        a, zs, acts = x[n], [], [x[n]]  # acts[l] = a^l, a^0 = the input
        for l in range(L):
            z = ws[l] @ a + bs[l]
            zs.append(z)
            a = SIGMA[activation](z) if l < L - 1 else z  # the output layer gives logits
            acts.append(a)
        onehot = torch.zeros(len(zs[-1]), dtype=torch.float64)
        onehot[y[n]] = 1.0
        delta = torch.exp(zs[-1]) / torch.exp(zs[-1]).sum() - onehot  # δ^L = softmax(z^L) − ŷ
        for l in reversed(range(L)):
            grad_w[l] += torch.outer(delta, acts[l]) / N  # ∂C/∂w_ij = a^{l−1}_j δ^l_i
            grad_b[l] += delta / N
            if l > 0:
                delta = SIGMA_PRIME[activation](zs[l - 1]) * (ws[l].T @ delta)
    return grad_w, grad_b


def backward(model: MLP, x: torch.Tensor, y: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    CrossEntropyLoss()(model(x), y).backward()


# GradientFlow.measure ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_measure_gradients_and_delta_equal_hand_backprop(activation):
    model = tiny_mlp(activation)
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y)
    flow = GradientFlow(model)
    backward(model, x, y)
    out = flow.measure(x)
    grad_w, grad_b = hand_backprop(activation, x, y, [W1, W2, W3], [B1, B2, B3])
    # Layer 1 is next to the input (shape 4×3), layer 3 is the output layer (2×4).
    assert [g.shape for g in grad_w] == [(4, 3), (4, 4), (2, 4)]
    for i, (gw, gb) in enumerate(zip(grad_w, grad_b), start=1):
        torch.testing.assert_close(out[f"~gradients/layer_{i}"], gw.norm())
        torch.testing.assert_close(out[f"~delta/layer_{i}"], gb.norm())  # ‖batch-mean of δ^i‖
        torch.testing.assert_close(out[f"~gradients/log10_layer_{i}"], gw.norm().log10())
        torch.testing.assert_close(out[f"~delta/log10_layer_{i}"], gb.norm().log10())
    # The three layers really differ, so a shuffled numbering could not pass the loop above.
    norms = [g.norm().item() for g in grad_w]
    assert len({round(v, 6) for v in norms}) == 3
    assert {k for k in out if k.startswith(("~gradients/", "~delta/"))} == {
        *(f"~gradients/layer_{i}" for i in (1, 2, 3)),
        *(f"~delta/layer_{i}" for i in (1, 2, 3)),
        *(f"~gradients/log10_layer_{i}" for i in (1, 2, 3)),
        *(f"~delta/log10_layer_{i}" for i in (1, 2, 3)),
    }


def test_weights_moved_is_relative_distance_from_initial_weights():
    model = tiny_mlp("sigmoid")
    x, y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y)
    flow = GradientFlow(model)
    backward(model, x, y)
    before = flow.measure(x)
    for i in (1, 2, 3):
        assert before[f"~weights/moved_layer_{i}"].item() == 0.0

    lr = 0.1
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    optimizer.step()
    after_one = flow.measure(x)
    grad_w, _ = hand_backprop("sigmoid", x, y, [W1, W2, W3], [B1, B2, B3])
    for i, (gw, w0) in enumerate(zip(grad_w, [W1, W2, W3]), start=1):
        # W − W0 = −η ∂C/∂W after one plain gradient step.
        expected = lr * gw.norm() / torch.tensor(w0, dtype=torch.float64).norm()
        torch.testing.assert_close(after_one[f"~weights/moved_layer_{i}"], expected)

    backward(model, x, y)
    optimizer.step()
    after_two = flow.measure(x)
    for i, (layer, w0) in enumerate(zip(model.linears(), [W1, W2, W3]), start=1):
        w0 = torch.tensor(w0, dtype=torch.float64)
        # Measured from W0, not from the previous step.
        torch.testing.assert_close(after_two[f"~weights/moved_layer_{i}"], (layer.weight - w0).norm() / w0.norm())
        assert after_two[f"~weights/moved_layer_{i}"] > after_one[f"~weights/moved_layer_{i}"]


# Saturated, dead and idle units on hand-set pre-activations ---------------------------------------

# With W^1 = I and b^1 = 0 the first layer's z is the input itself; with W^2 = 0 the second
# layer's z is b^2 for every sample.
Z1 = [[0.0, 1.0, 5.0, -8.0], [-0.5, 3.0, -4.0, 10.0], [2.5, -2.5, 0.2, -1.0]]
B2_SET = [0.0, 2.5, -6.0, 1.0]


def identity_then_constant(activation: str) -> tuple[MLP, torch.Tensor]:
    model = MLP(in_features=4, out_features=2, depth=2, width=4, activation=activation).double()
    eye, zero = torch.eye(4).tolist(), torch.zeros(4, 4).tolist()
    set_layers(model, [(eye, [0.0] * 4), (zero, B2_SET), (torch.zeros(2, 4).tolist(), [0.0, 0.0])])
    return model, torch.tensor(Z1, dtype=torch.float64)


def test_saturation_thresholds_are_a_tenth_of_the_peak_slope():
    # σ'(z)/σ'_max < 0.1 ⟺ |z| > 2·atanh(√0.9) ≈ 3.64 for the sigmoid (σ'_max = 1/4)
    # and |z| > atanh(√0.9) ≈ 1.82 for tanh (σ'_max = 1).
    z_sigmoid, z_tanh = 2 * math.atanh(math.sqrt(0.9)), math.atanh(math.sqrt(0.9))
    assert z_sigmoid == pytest.approx(3.637, abs=1e-3) and z_tanh == pytest.approx(1.818, abs=1e-3)
    for activation, edge in (("sigmoid", z_sigmoid), ("tanh", z_tanh)):
        z = torch.tensor([[edge - 0.01, -(edge - 0.01), edge + 0.01, -(edge + 0.01)]], dtype=torch.float64)
        got = unit_statistics(activation, [z])["~activations/saturated_layer_1"]
        assert got.item() == pytest.approx(0.5)


@pytest.mark.parametrize(
    "activation, expected",
    [
        # sigmoid saturates where |z| > 3.64: layer 1 has 5, −8, −4, 10 (4 of 12 unit×samples);
        # layer 2's z = b^2 on all 3 samples: only −6 (1 of 4 units, so 3 of 12).
        ("sigmoid", {1: 4 / 12, 2: 1 / 4}),
        # tanh saturates where |z| > 1.82: layer 1 has 5, −8, 3, −4, 10, 2.5, −2.5 (7 of 12);
        # layer 2: 2.5 and −6 (2 of 4).
        ("tanh", {1: 7 / 12, 2: 2 / 4}),
    ],
)
def test_saturated_fraction_on_hand_set_pre_activations(activation, expected):
    model, x = identity_then_constant(activation)
    out = GradientFlow(model).measure(x)
    for i, fraction in expected.items():
        assert out[f"~activations/saturated_layer_{i}"].item() == pytest.approx(fraction)
    assert not any(k.startswith(("~activations/dead", "~activations/idle")) for k in out)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "softplus"])
def test_dead_fraction_counts_units_never_positive_on_the_batch(activation):
    # Layer 1's z is the input (W^1 = I, b^1 = 0); its units are the columns:
    z1 = [[-1.0, 2.0, 0.0, -3.0], [-2.0, -1.0, 0.0, 4.0], [-0.5, -0.1, 0.0, -0.2]]
    # unit 1: all < 0 → dead; unit 2: 2 > 0 once → alive; unit 3: z = 0 always → dead (z ≤ 0);
    # unit 4: 4 > 0 once → alive. Layer 1: 2 of 4 dead.
    model, _ = identity_then_constant(activation)
    with torch.no_grad():
        model.linears()[1].bias.copy_(torch.tensor([-1.0, 0.0, 0.5, -0.2]))  # z^2 = b^2: 3 of 4 ≤ 0
    out = GradientFlow(model).measure(torch.tensor(z1, dtype=torch.float64))
    assert out["~activations/dead_layer_1"].item() == pytest.approx(0.5)
    assert out["~activations/dead_layer_2"].item() == pytest.approx(0.75)
    assert not any(k.startswith(("~activations/saturated", "~activations/idle")) for k in out)


def test_idle_pieces_fraction_for_maxout():
    # One maxout layer, 2 units × 3 pieces, linear = I so the pieces' values are the input:
    # unit j, piece k is input column j·3 + k.
    model = MLP(in_features=6, out_features=2, depth=1, width=2, activation="maxout", pieces=3).double()
    set_layers(model, [(torch.eye(6).tolist(), [0.0] * 6), (torch.zeros(2, 2).tolist(), [0.0, 0.0])])
    x = torch.tensor(
        [
            [1.0, 2.0, 3.0, 0.0, -1.0, 5.0],  # unit 1: piece 3 wins; unit 2: piece 3 wins
            [3.0, 2.0, 1.0, -5.0, 4.0, 1.0],  # unit 1: piece 1 wins; unit 2: piece 2 wins
        ],
        dtype=torch.float64,
    )
    out = GradientFlow(model).measure(x)
    # Unit 1 never picks piece 2, unit 2 never picks piece 1: 2 idle pieces of 6.
    assert out["~activations/idle_pieces_layer_1"].item() == pytest.approx(2 / 6)
    assert "~activations/idle_pieces_layer_2" not in out  # the output layer is not a hidden layer


# pre_activations -----------------------------------------------------------------------------------


def test_pre_activations_are_the_hidden_z_without_logits_and_without_dropout():
    torch.manual_seed(0)
    model = MLP(
        in_features=3, out_features=2, depth=2, width=4, activation="sigmoid", dropout=0.5, input_dropout=0.3
    ).double()
    set_layers(model, [(W1, B1), (W2, B2), (W3, B3)])
    assert sum(isinstance(m, Dropout) for m in model.net) == 3  # input + after each hidden layer
    model.train()  # as in the training loop: dropout would drop units if it were applied
    x = torch.tensor(X, dtype=torch.float64)
    zs = pre_activations(model, x)
    w1, w2 = torch.tensor(W1, dtype=torch.float64), torch.tensor(W2, dtype=torch.float64)
    z1 = x @ w1.T + torch.tensor(B1, dtype=torch.float64)
    z2 = SIGMA["sigmoid"](z1) @ w2.T + torch.tensor(B2, dtype=torch.float64)
    assert len(zs) == 2  # the hidden layers only; z^3 (the logits) is left out
    torch.testing.assert_close(zs[0], z1)
    torch.testing.assert_close(zs[1], z2)
    torch.testing.assert_close(pre_activations(model, x)[1], z2)  # no random mask: same again


def test_pre_activations_for_maxout_are_all_pieces():
    torch.manual_seed(0)
    model = MLP(in_features=5, out_features=3, depth=2, width=4, activation="maxout", pieces=3, dropout=0.5)
    model.train()
    maxouts = [m for m in model.net if isinstance(m, Maxout)]
    x = torch.randn(7, 5)
    zs = pre_activations(model, x)
    assert [z.shape for z in zs] == [(7, 4, 3), (7, 4, 3)]
    torch.testing.assert_close(zs[0], maxouts[0].pre_activation(x))
    torch.testing.assert_close(zs[1], maxouts[1].pre_activation(maxouts[0](x)))  # dropout skipped


# step_sizes ------------------------------------------------------------------------------------------

BATCHES = [
    (X, Y),
    ([[0.2, 1.0, -0.4], [-1.0, -0.3, 0.9], [0.7, 0.1, 0.0]], [1, 0, 0]),
    ([[2.0, 0.5, 1.0], [-0.6, -1.8, 0.3], [0.0, 1.1, -0.9]], [0, 0, 1]),
]


def run_steps(optimizer_factory, groups: bool = False) -> tuple[MLP, torch.optim.Optimizer, list[list[torch.Tensor]]]:
    """Three steps on three batches; returns every weight matrix's gradient at each step."""
    model = tiny_mlp("sigmoid")
    linears = model.linears()  # two groups: effective_step must find each weight's own
    params = (
        [{"params": [m.weight for m in linears]}, {"params": [m.bias for m in linears]}]
        if groups
        else model.parameters()
    )
    optimizer = optimizer_factory(params)
    grads = []
    for xb, yb in BATCHES:
        backward(model, torch.tensor(xb, dtype=torch.float64), torch.tensor(yb))
        grads.append([layer.weight.grad.clone() for layer in model.linears()])
        optimizer.step()
    return model, optimizer, grads


@pytest.mark.parametrize("groups", [False, True])
def test_step_sizes_for_adagrad_are_eta_t_over_sigma_t(groups):
    lr, eps = 0.05, 1e-10
    model = tiny_mlp("sigmoid")
    assert step_sizes(Adagrad(model.parameters(), lr=lr, eps=eps), model) == {}  # before any step
    model, optimizer, grads = run_steps(lambda p: Adagrad(p, lr=lr, eps=eps), groups)
    out = step_sizes(optimizer, model)
    assert set(out) == {f"~optim/step_size_layer_{i}" for i in (1, 2, 3)}
    t = len(grads) - 1  # the last update was step t = 2, counted from 0
    for i in (1, 2, 3):
        g = [step[i - 1] for step in grads]
        eta_t = lr / math.sqrt(t + 1)
        sigma_t = torch.sqrt(sum(gi**2 for gi in g) / (t + 1)) + eps
        torch.testing.assert_close(out[f"~optim/step_size_layer_{i}"], (eta_t / sigma_t).mean())


def test_step_sizes_for_momentum_are_mean_absolute_velocity():
    lr, lam = 0.1, 0.9
    model = tiny_mlp("sigmoid")
    model, optimizer, grads = run_steps(lambda p: Momentum(p, lr=lr, momentum=lam))
    out = step_sizes(optimizer, model)
    assert set(out) == {f"~optim/step_size_layer_{i}" for i in (1, 2, 3)}
    for i, (layer, w0) in enumerate(zip(model.linears(), [W1, W2, W3]), start=1):
        v, moved = torch.zeros_like(grads[0][i - 1]), torch.zeros_like(grads[0][i - 1])
        for step in grads:  # v^{t+1} = λ v^t − η g^t;  θ^{t+1} = θ^t + v^{t+1}
            v = lam * v - lr * step[i - 1]
            moved += v
        torch.testing.assert_close(out[f"~optim/step_size_layer_{i}"], v.abs().mean())
        # The hand-computed v really is what the optimizer moved the weights by.
        torch.testing.assert_close(layer.weight.detach(), torch.tensor(w0, dtype=torch.float64) + moved)


@pytest.mark.parametrize("factory", [lambda p: torch.optim.SGD(p, lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)])
def test_step_sizes_is_empty_for_torch_optimizers(factory):
    model, optimizer, _ = run_steps(factory)
    assert step_sizes(optimizer, model) == {}


# custom_scalars_layout -------------------------------------------------------------------------------

LOG_FAMILIES = {
    "gradients": "~gradients/log10_layer_{}",
    "delta": "~delta/log10_layer_{}",
    "moved": "~weights/moved_layer_{}",
}
UNIT_FAMILIES = {
    "sigmoid": "saturated_layer",
    "tanh": "saturated_layer",
    "relu": "dead_layer",
    "maxout": "idle_pieces_layer",
}
OTHER_TAGS = [
    "train/loss",
    "val/loss",
    "val/acc",
    "~end/test/acc",
    "~run/lr",
    "~weights/layer_1",
    "~end/best_epoch",
    *(f"~gradients/layer_{i}" for i in range(1, 5)),
    *(f"~delta/layer_{i}" for i in range(1, 5)),
]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "maxout", "identity"])
@pytest.mark.parametrize("with_steps", [True, False])
def test_custom_scalars_layout_has_one_log_scale_chart_per_quantity_it_has_data_for(activation, with_steps):
    L = 4
    (category,) = custom_scalars_layout(L, activation, with_steps).values()
    families = {name: [p.format(i) for i in range(1, L + 1)] for name, p in LOG_FAMILIES.items()}
    if activation in UNIT_FAMILIES:
        families["units"] = [f"~activations/{UNIT_FAMILIES[activation]}_{i}" for i in range(1, L)]
    if with_steps:
        families["step"] = [f"~optim/step_size_layer_{i}" for i in range(1, L + 1)]
    # Tags of the other unit kinds exist in other runs of a sweep: a chart must not pick them up.
    other_units = [f"~activations/{u}_1" for u in set(UNIT_FAMILIES.values()) - {UNIT_FAMILIES.get(activation)}]
    all_tags = [t for tags in families.values() for t in tags] + OTHER_TAGS + other_units
    charts = list(category.values())
    for kind, regexes in charts:
        assert kind == "Multiline" and len(regexes) == 1
    # TensorBoard's custom-scalars backend filters tags with re.match: every chart covers exactly
    # one family, and every family this run logs has its chart (none empty, none missing).
    covered = [{t for t in all_tags if re.match(regexes[0], t)} for _, regexes in charts]
    assert sorted(map(sorted, covered)) == sorted(map(sorted, families.values()))


# The vanishing gradient itself ------------------------------------------------------------------------


def layer_ratio(activation: str, init: str, seed: int = 0) -> float:
    """‖∂C/∂W^{11}‖ / ‖∂C/∂W^1‖ at initialisation: a 20 → 10×32 → 4 net on random inputs."""
    torch.manual_seed(seed)
    model = MLP(in_features=20, out_features=4, depth=10, width=32, activation=activation, init=init)
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    flow = GradientFlow(model)
    backward(model, x, y)
    out = flow.measure(x)
    return (out["~gradients/layer_11"] / out["~gradients/layer_1"]).item()


def test_sigmoid_gradients_vanish_towards_the_input_and_relu_ones_do_not():
    sigmoid, relu = layer_ratio("sigmoid", "default"), layer_ratio("relu", "default")
    # Measured (seed 0): sigmoid ≈ 2e8, relu ≈ 5e2 with torch's default init.
    assert sigmoid >= 100
    assert sigmoid >= 1e4 * relu
    # torch's default init (U(±1/√fan_in), Var w = 1/(3·fan_in)) shrinks a ReLU net's signals by
    # about √(1/6) per layer, so even ReLU's layer-1 gradient is hundreds of times smaller. With
    # the init made for ReLU (He et al.) the vanishing is gone, while the sigmoid keeps it.
    assert layer_ratio("relu", "kaiming") < 10
    assert layer_ratio("sigmoid", "kaiming") >= 100


# End to end through train() ----------------------------------------------------------------------------

E2E = [
    "data=synthetic",
    "data.source.n_samples=300",
    "trainer.max_epochs=1",
    "trainer.progress=log",
    "trainer.log_every_n_steps=2",
    "optimizer=adagrad",
]


def read_events(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return events


def test_train_logs_gradient_flow_with_diagnostics(tmp_path):
    cfg = compose_config([*E2E, "diagnostics=true"], tmp_path / "on")
    train(cfg)
    events = read_events(tmp_path / "on")
    tags = set(events.Tags()["scalars"])
    L = 3  # depth 2 (relu, the default model) + the output layer
    for i in range(1, L + 1):
        for family in (
            "~gradients/layer_{}",
            "~delta/layer_{}",
            "~weights/moved_layer_{}",
            "~optim/step_size_layer_{}",
        ):
            assert family.format(i) in tags
        for family in ("~gradients/{}_{}", "~delta/{}_{}"):  # the log10 tags are the norms' log10
            norms, logs = events.Scalars(family.format("layer", i)), events.Scalars(family.format("log10_layer", i))
            assert [e.step for e in logs] == [e.step for e in norms]
            assert [e.value for e in logs] == pytest.approx([math.log10(e.value) for e in norms], rel=1e-5)
    assert {"~activations/dead_layer_1", "~activations/dead_layer_2"} <= tags
    assert not {f"~gradients/layer_{L + 1}", "~activations/dead_layer_3", "~activations/saturated_layer_1"} & tags
    # 210 training samples in batches of 32: 7 steps, logged at steps 2, 4, 6.
    assert [e.step for e in events.Scalars("~gradients/layer_1")] == [2, 4, 6]
    assert all(e.value > 0 for e in events.Scalars("~weights/moved_layer_1"))
    assert all(0.0 <= e.value <= 1.0 for e in events.Scalars("~activations/dead_layer_1"))

    # The layout is a tensor of the custom_scalars plugin: its tag in the plugin's index, the
    # serialized Layout proto in the tensor's value.
    assert "custom_scalars__config__" in events.PluginTagToContent("custom_scalars")
    (config,) = events.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
    expected = next(iter(custom_scalars_layout(L, "relu", step_sizes=True).values()))
    assert charts == {title: regexes for title, (_, regexes) in expected.items()}
    for regexes in charts.values():  # every chart shows something this run logged
        assert any(re.match(regexes[0], tag) for tag in tags)


def test_train_without_diagnostics_logs_no_gradient_flow(tmp_path):
    cfg = compose_config([*E2E, "diagnostics=false"], tmp_path / "off")
    train(cfg)
    events = read_events(tmp_path / "off")
    tags = set(events.Tags()["scalars"])
    assert "train/loss" in tags
    assert not [t for t in tags if t.startswith(("~gradients/", "~delta/", "~weights/moved", "~activations/"))]
    assert "custom_scalars__config__" not in events.Tags()["tensors"]  # no layout either
    with pytest.raises(KeyError):
        events.PluginTagToContent("custom_scalars")
    # The optimizer's step sizes are not part of the gradient-flow switch: train.py logs them
    # for every optimizer that exposes them (the lecture's Adagrad here).
    assert "~optim/step_size_layer_1" in tags


def test_a_deep_sigmoid_run_shows_its_vanishing_gradient_as_an_image_and_in_log10_tags(tmp_path):
    cfg = compose_config(
        [*E2E, "diagnostics=true", "model.activation=sigmoid", "model.depth=6", "trainer.max_epochs=3"], tmp_path
    )
    train(cfg)
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    # One figure after every epoch here (3 epochs <= FLOW_IMAGES), each at the epoch's last step.
    images = events.Images("~gradient_flow")
    epoch_steps = [e.step for e in events.Scalars("~run/epoch")]
    assert [e.step for e in images] == epoch_steps
    assert images[0].width > 300 and images[0].height > 200
    # The log10 tags carry the effect: layer 1's gradient orders of magnitude below layer 7's.
    first, last = (
        events.Scalars("~gradients/log10_layer_1")[0].value,
        events.Scalars("~gradients/log10_layer_7")[0].value,
    )
    assert last - first > 2


def test_gradient_flow_figure_draws_every_layer_over_training_and_both_norms_per_layer_on_log_axes():
    from dltips.observe.plots import gradient_flow_figure, to_image

    # 2 steps, 3 layers; layer 2 has no bias (NaN ‖δ‖).
    norms = torch.tensor(
        [[[1e-6, 1e-3, 1.0], [2e-6, math.nan, 0.5]], [[2e-6, 2e-3, 0.9], [3e-6, math.nan, 0.4]]]
    ).numpy()
    fig = gradient_flow_figure([10, 20], norms, "activation=sigmoid")
    over, now = fig.axes
    assert over.get_yscale() == now.get_yscale() == "log"
    # One range for every run (FLOW_RANGE), so that two runs' figures compare by eye; the title
    # names the run and how much of the gradient reaches layer 1.
    assert over.get_ylim() == now.get_ylim() == pytest.approx((1e-8, 10.0))
    title = fig.get_suptitle()
    assert "activation=sigmoid" in title and f"{norms[-1, 0, 0] / norms[-1, 0, -1]:.1e}" in title
    texts = [title, over.get_title(), *(t.get_text() for ax in (over, now) for t in ax.get_legend().get_texts())]
    assert all("^" not in re.sub(r"\$[^$]*\$", "", text) for text in texts)  # superscripts as maths, no caret
    # Left: one line per layer, its ‖∂C/∂W‖ at each step.
    assert [list(line.get_xdata()) for line in over.get_lines()] == [[10, 20]] * 3
    for l, line in enumerate(over.get_lines()):
        assert list(line.get_ydata()) == pytest.approx(list(norms[:, 0, l]))
    # Right: the lecture's figure at the last step, ‖∂C/∂W‖ and ‖δ‖ against the layer.
    weights, deltas = now.get_lines()
    assert list(weights.get_xdata()) == [1, 2, 3]
    assert list(weights.get_ydata()) == pytest.approx(list(norms[-1, 0]))
    assert list(deltas.get_ydata()) == pytest.approx(list(norms[-1, 1]), nan_ok=True)
    assert all(ax.get_legend() is not None and ax.get_title() for ax in (over, now))
    assert to_image(fig).shape[2] == 3
