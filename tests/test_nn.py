"""dltips.nn against torch built-ins and the lecture's formulas, each computed a second way."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dltips.nn import ACTIVATION_NAMES, MLP, CrossEntropyLoss, Dropout, Maxout, MSELoss, PReLU, create_activation
from dltips.nn.maxout import max_piece

# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

# Each activation written out from its formula (not through the function under test).
REFERENCE_ACTIVATIONS = {
    "sigmoid": lambda z: 1.0 / (1.0 + torch.exp(-z)),
    "tanh": lambda z: (torch.exp(z) - torch.exp(-z)) / (torch.exp(z) + torch.exp(-z)),
    "relu": lambda z: torch.where(z > 0, z, torch.zeros_like(z)),
    "softplus": lambda z: torch.log1p(torch.exp(z)),
    "leaky_relu": lambda z: torch.where(z > 0, z, 0.01 * z),
    "prelu": lambda z: torch.where(z > 0, z, 0.25 * z),  # slope at its He et al. init
}
# ... and the torch built-in each one should agree with.
TORCH_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "softplus": F.softplus,
    "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),
    "prelu": lambda z: F.prelu(z, torch.full((z.shape[-1],), 0.25, dtype=z.dtype)),
}


def test_reference_table_covers_every_activation_name():
    assert set(REFERENCE_ACTIVATIONS) == set(ACTIVATION_NAMES) - {"maxout"}
    assert "maxout" in ACTIVATION_NAMES


@pytest.mark.parametrize("name", sorted(REFERENCE_ACTIVATIONS))
def test_activation_matches_formula_and_torch(name):
    torch.manual_seed(0)
    z = (torch.randn(16, 7, dtype=torch.float64) * 3).requires_grad_()
    z_ref = z.detach().clone().requires_grad_()
    module = create_activation(name, 7).double()
    assert isinstance(module, nn.Module)

    out = module(z)
    assert out.shape == z.shape
    torch.testing.assert_close(out, REFERENCE_ACTIVATIONS[name](z.detach()))
    ref = TORCH_ACTIVATIONS[name](z_ref)
    torch.testing.assert_close(out, ref)

    # The derivative σ'(z) that backprop multiplies into δ is the built-in's too.
    upstream = torch.randn_like(z)
    (out * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(z.grad, z_ref.grad)


def test_leaky_relu_slope_is_the_lectures_001():
    z = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    out = create_activation("leaky_relu", 5)(z)
    torch.testing.assert_close(out[z < 0], 0.01 * z[z < 0])
    torch.testing.assert_close(out[z > 0], z[z > 0])


def test_prelu_slope_is_a_learned_parameter_initialised_at_025():
    torch.manual_seed(1)
    n = 5
    module = create_activation("prelu", n)
    assert isinstance(module, PReLU)
    assert isinstance(module.slope, nn.Parameter)
    assert module.slope.requires_grad
    assert module.slope.shape == (n,)
    torch.testing.assert_close(module.slope.detach(), torch.full((n,), 0.25))
    assert any(p is module.slope for p in module.parameters())

    # Gradient wrt the slope: ∂a/∂α = z where z ≤ 0, else 0; compare with torch's prelu.
    z = torch.randn(32, n)
    upstream = torch.randn(32, n)
    (module(z) * upstream).sum().backward()
    weight = torch.full((n,), 0.25, requires_grad=True)
    (F.prelu(z, weight) * upstream).sum().backward()
    assert module.slope.grad is not None
    assert module.slope.grad.abs().sum() > 0
    torch.testing.assert_close(module.slope.grad, weight.grad)
    torch.testing.assert_close(module.slope.grad, (torch.where(z > 0, 0.0, z) * upstream).sum(0))

    # A gradient step actually changes the slope (it is learned, not a buffer).
    before = module.slope.detach().clone()
    torch.optim.SGD(module.parameters(), lr=0.1).step()
    assert not torch.equal(module.slope.detach(), before)


def test_unknown_activation_lists_allowed_names():
    with pytest.raises(ValueError) as info:
        create_activation("swish", 4)
    message = str(info.value)
    assert "swish" in message
    for name in ACTIVATION_NAMES:
        assert name in message


# ---------------------------------------------------------------------------------------------
# Maxout
# ---------------------------------------------------------------------------------------------


def test_maxout_holds_one_linear_with_all_pieces():
    layer = Maxout(6, 4, 3)
    assert isinstance(layer.linear, nn.Linear)
    assert layer.linear.in_features == 6
    assert layer.linear.out_features == 4 * 3
    assert layer(torch.randn(2, 6)).shape == (2, 4)


@pytest.mark.parametrize("pieces", [2, 3, 5])
def test_maxout_is_max_over_consecutive_pieces(pieces):
    torch.manual_seed(2)
    in_f, out_f, batch = 6, 4, 9
    layer = Maxout(in_f, out_f, pieces)
    x = torch.randn(batch, in_f)
    out = layer(x)

    lin = x @ layer.linear.weight.T + layer.linear.bias  # (batch, out_f * pieces)
    expected = torch.empty(batch, out_f)
    for b in range(batch):
        for j in range(out_f):
            expected[b, j] = max(lin[b, j * pieces + k] for k in range(pieces))
    torch.testing.assert_close(out, expected)


def test_relu_is_maxout_with_two_pieces_one_fixed_at_zero():
    torch.manual_seed(3)
    layer = Maxout(5, 7, 2)
    with torch.no_grad():
        layer.linear.weight[1::2] = 0.0  # second piece of every unit ≡ 0
        layer.linear.bias[1::2] = 0.0
    x = torch.randn(20, 5)
    w, b = layer.linear.weight[0::2], layer.linear.bias[0::2]
    expected = F.relu(x @ w.T + b)
    out = layer(x)
    torch.testing.assert_close(out, expected)
    assert (out == 0).any() and (out > 0).any()  # both regimes were exercised


def test_maxout_gradient_reaches_only_the_winning_piece():
    torch.manual_seed(4)
    in_f, out_f, pieces = 5, 4, 3
    layer = Maxout(in_f, out_f, pieces)
    x = torch.randn(1, in_f)
    layer(x).sum().backward()

    lin = (x @ layer.linear.weight.T + layer.linear.bias).detach()[0]
    wgrad, bgrad = layer.linear.weight.grad, layer.linear.bias.grad
    for j in range(out_f):
        values = [lin[j * pieces + k] for k in range(pieces)]
        winner = max(range(pieces), key=lambda k: values[k])
        for k in range(pieces):
            row = j * pieces + k
            if k == winner:
                # d(max)/dW_row = x for the piece that won.
                torch.testing.assert_close(wgrad[row], x[0])
                assert bgrad[row] == 1.0
            else:
                assert torch.count_nonzero(wgrad[row]) == 0
                assert bgrad[row] == 0.0


CUDA = pytest.param(
    "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_maxout_tie_trains_only_the_first_maximal_piece(device):
    # Rows: a tie of pieces 1 and 2, a three-way tie, a tie of the first and last, no tie.
    z = torch.tensor(
        [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, 1.0, 5.0], [0.0, -1.0, 4.0]], device=device, requires_grad=True
    )
    g = torch.tensor([0.5, -2.0, 3.0, 1.5], device=device)  # the upstream gradient dL/dy
    y = max_piece(z)
    torch.testing.assert_close(y, z.detach().amax(dim=-1), rtol=0, atol=0)  # the same forward
    y.backward(g)
    winner = F.one_hot(torch.tensor([1, 0, 0, 2], device=device), num_classes=3).float()  # written out by hand
    torch.testing.assert_close(z.grad, winner * g[:, None], rtol=0, atol=0)
    torch.testing.assert_close(winner, F.one_hot(z.detach().argmax(dim=-1), num_classes=3).float())


def test_maxout_layer_with_tied_pieces_updates_one_of_them():
    torch.manual_seed(6)
    layer = Maxout(3, 2, 2)
    # Small integers: every sum is exact in any order, so the tie holds whatever the matmul kernel.
    with torch.no_grad():
        layer.linear.weight.copy_(torch.randint(-3, 4, (2, 3)).float().repeat_interleave(2, dim=0))
        layer.linear.bias.copy_(torch.randint(-3, 4, (2,)).float().repeat_interleave(2))  # piece 1 ≡ piece 0
    x = torch.randint(-3, 4, (4, 3)).float()
    layer(x).sum().backward()
    torch.testing.assert_close(layer.linear.weight.grad[0::2], x.sum(0).expand(2, 3))
    torch.testing.assert_close(layer.linear.bias.grad, torch.tensor([4.0, 0.0, 4.0, 0.0]))
    assert torch.count_nonzero(layer.linear.weight.grad[1::2]) == 0


def test_maxout_gradient_without_ties_is_amax_gradient():
    torch.manual_seed(5)
    z = torch.randn(2, 6, 7, 4, requires_grad=True)  # (ensemble member, batch, units, pieces): no ties
    g = torch.randn(2, 6, 7)
    (ours,) = torch.autograd.grad(max_piece(z), z, g)
    (reference,) = torch.autograd.grad(z.amax(dim=-1), z, g)
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)


@pytest.mark.parametrize("pieces", [1, 0, -2])
def test_maxout_needs_two_pieces(pieces):
    with pytest.raises(ValueError, match=r"model\.pieces"):
        Maxout(4, 3, pieces)


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------


def nonzero_input(*shape: int) -> torch.Tensor:
    """Entries bounded away from 0, so a dropped unit (exactly 0) is recognisable."""
    x = torch.rand(*shape) + 0.5
    return torch.where(torch.rand(*shape) < 0.5, -x, x)


@pytest.mark.parametrize("p", [0.2, 0.5])
@pytest.mark.parametrize(
    "mode, train_scale, eval_scale",
    # weight_scaling: survivors pass unchanged, test multiplies by (1 − p);
    # inverted: survivors are divided by (1 − p), test is the identity.
    [("weight_scaling", lambda p: 1.0, lambda p: 1 - p), ("inverted", lambda p: 1 / (1 - p), lambda p: 1.0)],
)
def test_dropout_train_and_eval(p, mode, train_scale, eval_scale):
    torch.manual_seed(5)
    layer = Dropout(p, mode)
    x = nonzero_input(200, 50)
    out = layer.train()(x)
    mask = (out != 0).to(x.dtype)
    torch.testing.assert_close(out, x * mask * train_scale(p))
    assert abs(1 - mask.mean().item() - p) < 0.02  # P(drop) = p
    torch.testing.assert_close(layer.eval()(x), x * eval_scale(p))


def test_inverted_dropout_matches_torch_dropout_in_distribution():
    p = 0.3
    torch.manual_seed(7)
    x = nonzero_input(100, 40)
    ours = Dropout(p, "inverted").train()(x)
    theirs = nn.Dropout(p).train()(x)
    # Both give x/(1−p) or 0, dropping about a fraction p; the masks are independent samples.
    for out in (ours, theirs):
        ratio = out / x
        kept = ratio != 0
        torch.testing.assert_close(ratio[kept], torch.full_like(ratio[kept], 1 / (1 - p)))
        assert abs(1 - kept.float().mean().item() - p) < 0.03
    torch.testing.assert_close(nn.Dropout(p).eval()(x), Dropout(p, "inverted").eval()(x))


@pytest.mark.parametrize("mode", ["weight_scaling", "inverted"])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_training_mean_matches_eval_output(mode, p):
    torch.manual_seed(8)
    layer = Dropout(p, mode)
    x = torch.linspace(-2.0, 3.0, 12)
    n_calls = 400
    layer.train()
    # Many training-mode calls on a batch of copies of x: 400 × 50 samples per element.
    samples = torch.stack([layer(x.expand(50, -1)) for _ in range(n_calls)])
    mean = samples.reshape(-1, x.numel()).mean(0)
    expected = layer.eval()(x)

    n = n_calls * 50
    scale = 1.0 if mode == "weight_scaling" else 1.0 / (1 - p)
    std_one = x.abs() * scale * math.sqrt(p * (1 - p))  # std of one sample x·scale·Bernoulli(1−p)
    assert torch.all((mean - expected).abs() <= 5 * std_one / math.sqrt(n) + 1e-6)
    # The expectation is not trivially matched: one training call is far from it.
    assert not torch.allclose(layer.train()(x.expand(50, -1)), expected.expand(50, -1))


@pytest.mark.parametrize("mode", ["weight_scaling", "inverted"])
def test_dropout_mask_resampled_every_call(mode):
    torch.manual_seed(9)
    layer = Dropout(0.5, mode).train()
    x = nonzero_input(4, 256)
    masks = [layer(x) != 0 for _ in range(5)]
    for i in range(len(masks)):
        for k in range(i + 1, len(masks)):
            assert not torch.equal(masks[i], masks[k])
    # Within a batch, each example gets its own mask too.
    assert not torch.equal(masks[0][0], masks[0][1])


@pytest.mark.parametrize("mode", ["weight_scaling", "inverted"])
def test_zero_dropout_is_identity(mode):
    x = torch.randn(8, 5)
    torch.testing.assert_close(Dropout(0.0, mode).train()(x), x)
    torch.testing.assert_close(Dropout(0.0, mode).eval()(x), x)


def linears_after_dropout(model: MLP) -> list[tuple[nn.Linear, float]]:
    """(linear map, p) for every linear layer fed directly by a Dropout in the MLP."""
    layers = list(model.net)
    pairs = []
    for prev, layer in zip(layers, layers[1:]):
        if isinstance(prev, Dropout):
            pairs.append((layer.linear if isinstance(layer, Maxout) else layer, prev.p))
    return pairs


@pytest.mark.parametrize("activation", ["tanh", "relu", "maxout"])
def test_dropout_modes_agree_at_test_time_after_weight_conversion(activation):
    torch.manual_seed(10)
    kwargs = dict(depth=2, width=16, activation=activation, pieces=3, dropout=0.5, input_dropout=0.2)
    ws = MLP(6, 3, dropout_mode="weight_scaling", **kwargs)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    opt = torch.optim.SGD(ws.parameters(), lr=0.1)
    ws.train()
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(ws(x), y).backward()
        opt.step()

    inv = MLP(6, 3, dropout_mode="inverted", **kwargs)
    inv.load_state_dict(ws.state_dict())
    pairs = linears_after_dropout(inv)
    assert len(pairs) == 3  # after the input dropout and after each of the 2 hidden layers
    x_test = torch.randn(32, 6)
    ws.eval(), inv.eval()
    with torch.no_grad():
        # Without conversion the two test-time networks differ ...
        assert not torch.allclose(inv(x_test), ws(x_test), atol=1e-4)
        for linear, p in pairs:
            linear.weight.mul_(1 - p)  # weights only; biases are not scaled
        # ... with it they are the same function.
        torch.testing.assert_close(inv(x_test), ws(x_test))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_invalid_probability(p):
    with pytest.raises(ValueError):
        Dropout(p)


def test_dropout_unknown_mode():
    with pytest.raises(ValueError, match="weight_scaling"):
        Dropout(0.5, "gaussian")


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [6, 300])
def test_cross_entropy_gradient_is_softmax_minus_onehot(batch):
    torch.manual_seed(11)
    classes = 5
    z = (torch.randn(batch, classes, dtype=torch.float64) * 2).requires_grad_()
    y = torch.randint(0, classes, (batch,))
    loss = CrossEntropyLoss()(z, y)
    loss.backward()

    p = torch.exp(z.detach()) / torch.exp(z.detach()).sum(-1, keepdim=True)
    onehot = torch.zeros(batch, classes, dtype=torch.float64)
    onehot[torch.arange(batch), y] = 1.0
    # The lecture's δ^L = y − ŷ, and the batch mean divides it by the batch size.
    torch.testing.assert_close(z.grad, (p - onehot) / batch)
    # The cost itself: C = −log y_r averaged over the batch; scored without a gradient too
    # (from 64 rows on, computed with the classes as dim 1: see CrossEntropyLoss).
    torch.testing.assert_close(loss.detach(), -torch.log(p[torch.arange(batch), y]).mean())
    with torch.no_grad():
        torch.testing.assert_close(CrossEntropyLoss()(z, y), -torch.log(p[torch.arange(batch), y]).mean())


def _onehot(y: torch.Tensor, classes: int, dtype=torch.float64) -> torch.Tensor:
    out = torch.zeros(len(y), classes, dtype=dtype)
    out[torch.arange(len(y)), y] = 1.0
    return out


MSE_F = {
    "softmax": lambda z: torch.exp(z) / torch.exp(z).sum(-1, keepdim=True),
    "sigmoid": lambda z: 1.0 / (1.0 + torch.exp(-z)),
    "identity": lambda z: z,
}


@pytest.mark.parametrize("output", sorted(MSE_F))
def test_mse_loss_is_half_squared_error_averaged_over_batch(output):
    torch.manual_seed(12)
    batch, classes = 7, 4
    z = torch.randn(batch, classes, dtype=torch.float64).requires_grad_()
    y = torch.randint(0, classes, (batch,))
    loss = MSELoss(output)(z, y)

    f, onehot = MSE_F[output](z.detach()), _onehot(y, classes)
    written_out = sum(0.5 * ((f[b] - onehot[b]) ** 2).sum() for b in range(batch)) / batch
    torch.testing.assert_close(loss.detach(), written_out)
    # torch's mse_loss averages over batch × classes: multiply back by C, halve.
    torch.testing.assert_close(loss.detach(), 0.5 * classes * F.mse_loss(f, onehot, reduction="mean"))

    # Gradient: δ^L = f'(z) ∘ (f(z) − ŷ) / batch (softmax: through its Jacobian).
    loss.backward()
    r = (f - onehot) / batch
    if output == "identity":
        expected = r
    elif output == "sigmoid":
        expected = f * (1 - f) * r
    else:  # J_softmax = diag(f) − f fᵀ, symmetric
        expected = f * r - f * (f * r).sum(-1, keepdim=True)
    torch.testing.assert_close(z.grad, expected)


def test_mse_loss_unknown_output():
    with pytest.raises(ValueError, match=r"loss\.output"):
        MSELoss("tanh")


# ---------------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("activation", ["relu", "prelu", "sigmoid"])
def test_mlp_layer_count_and_shapes(depth, activation):
    in_f, out_f, width = 9, 4, 13
    model = MLP(in_f, out_f, depth=depth, width=width, activation=activation)
    linears = model.linears()
    assert len(linears) == depth + 1
    assert all(type(m) is nn.Linear for m in linears)
    shapes = [tuple(m.weight.shape) for m in linears]
    assert shapes == [(width, in_f)] + [(width, width)] * (depth - 1) + [(out_f, width)]
    acts = [m for m in model.net if not isinstance(m, nn.Linear)]
    assert len(acts) == depth
    if activation == "prelu":
        assert all(isinstance(a, PReLU) and a.slope.shape == (width,) for a in acts)
    assert not any(isinstance(m, (Dropout, Maxout)) for m in model.modules())
    assert model(torch.randn(3, in_f)).shape == (3, out_f)


def test_mlp_layout_with_dropout():
    model = MLP(8, 3, depth=2, width=10, activation="tanh", dropout=0.5, input_dropout=0.2, dropout_mode="inverted")
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == ["Dropout", "Linear", "Activation", "Dropout", "Linear", "Activation", "Dropout", "Linear"]
    drops = [m for m in model.net if isinstance(m, Dropout)]
    assert [d.p for d in drops] == [0.2, 0.5, 0.5]
    assert all(d.mode == "inverted" for d in drops)


@pytest.mark.parametrize("depth", [1, 2])
def test_mlp_maxout_builds_maxout_layers(depth):
    in_f, out_f, width, pieces = 7, 3, 6, 4
    model = MLP(in_f, out_f, depth=depth, width=width, activation="maxout", pieces=pieces)
    hidden = [m for m in model.net if isinstance(m, Maxout)]
    assert len(hidden) == depth
    assert all(m.pieces == pieces and m.out_features == width for m in hidden)
    assert hidden[0].in_features == in_f
    shapes = [tuple(m.weight.shape) for m in model.linears()]
    assert shapes == [(width * pieces, in_f)] + [(width * pieces, width)] * (depth - 1) + [(out_f, width)]
    assert [type(m) for m in model.net] == [Maxout] * depth + [nn.Linear]
    assert model(torch.randn(5, in_f)).shape == (5, out_f)


@pytest.mark.parametrize("activation", ["relu", "maxout"])
def test_mlp_linears_in_order_input_to_output(activation):
    model = MLP(5, 2, depth=3, width=8, activation=activation, dropout=0.3, input_dropout=0.1)
    expected = []
    for m in model.net:  # walk the forward pass
        if isinstance(m, Maxout):
            expected.append(m.linear)
        elif isinstance(m, nn.Linear):
            expected.append(m)
    got = model.linears()
    assert len(got) == len(expected) == 4
    assert all(a is b for a, b in zip(got, expected))
    assert got[0].in_features == 5 and got[-1].out_features == 2


def _reference_init(seed: int, init: str, **kwargs) -> MLP:
    """torch's default MLP under `seed`, then the named torch.nn.init applied layer by layer."""
    torch.manual_seed(seed)
    model = MLP(init="default", **kwargs)
    with torch.no_grad():
        for layer in model.linears():
            if init == "xavier":
                nn.init.xavier_uniform_(layer.weight)
            else:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return model


MLP_KW = dict(in_features=30, out_features=5, depth=2, width=40)


@pytest.mark.parametrize("activation", ["relu", "maxout"])
@pytest.mark.parametrize("init", ["xavier", "kaiming"])
def test_mlp_init_is_torch_init(init, activation):
    kwargs = dict(MLP_KW, activation=activation)
    torch.manual_seed(13)
    model = MLP(init=init, **kwargs)
    reference = _reference_init(13, init, **kwargs)
    for a, b in zip(model.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(a, b)
    for layer in model.linears():
        fan_out, fan_in = layer.weight.shape
        assert torch.count_nonzero(layer.bias) == 0
        if init == "xavier":
            assert layer.weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out))
    if init == "kaiming":  # N(0, 2/fan_in): check the std on the largest layer
        w = model.linears()[1].weight
        assert abs(w.std().item() / math.sqrt(2 / w.shape[1]) - 1) < 0.1


def test_mlp_default_init_is_torch_linear_default():
    torch.manual_seed(14)
    model = MLP(init="default", activation="relu", **MLP_KW)
    torch.manual_seed(14)
    plain = [nn.Linear(30, 40), nn.Linear(40, 40), nn.Linear(40, 5)]
    for ours, theirs in zip(model.linears(), plain, strict=True):
        torch.testing.assert_close(ours.weight, theirs.weight)
        torch.testing.assert_close(ours.bias, theirs.bias)


@pytest.mark.parametrize("activation", ["relu", "maxout"])
@pytest.mark.parametrize("init", ["default", "xavier", "kaiming"])
def test_mlp_bias_init_sets_hidden_biases_only(init, activation):
    kwargs = dict(MLP_KW, activation=activation, init=init)
    torch.manual_seed(15)
    model = MLP(bias_init=0.1, **kwargs)
    torch.manual_seed(15)
    plain = MLP(bias_init=None, **kwargs)
    *hidden, output = model.linears()
    *plain_hidden, plain_output = plain.linears()
    for layer, ref in zip(hidden, plain_hidden):
        torch.testing.assert_close(layer.bias.detach(), torch.full_like(layer.bias, 0.1))
        torch.testing.assert_close(layer.weight, ref.weight)
    # The output layer keeps the scheme's own bias.
    torch.testing.assert_close(output.bias, plain_output.bias)
    torch.testing.assert_close(output.weight, plain_output.weight)
    assert not torch.allclose(output.bias.detach(), torch.full_like(output.bias, 0.1))


@pytest.mark.parametrize(
    "overrides, key",
    [
        (dict(depth=0), "model.depth"),
        (dict(depth=-1), "model.depth"),
        (dict(width=0), "model.width"),
        (dict(activation="swish"), "model.activation"),
        (dict(init="orthogonal"), "model.init"),
        (dict(bias_init=float("nan")), "model.bias_init"),
        (dict(activation="maxout", pieces=1), "model.pieces"),
        (dict(dropout=-0.5), "model.dropout"),
        (dict(dropout=1.0), "model.dropout"),
        (dict(input_dropout=-0.1), "model.input_dropout"),
        (dict(dropout_mode="gaussian"), "model.dropout_mode"),
    ],
)
def test_mlp_invalid_config_names_the_key(overrides, key):
    kwargs = dict(depth=2, width=8, activation="relu")
    kwargs.update(overrides)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        MLP(4, 3, **kwargs)


def test_mlp_invalid_activation_lists_allowed_names():
    with pytest.raises(ValueError) as info:
        MLP(4, 3, depth=1, width=4, activation="swish")
    for name in ACTIVATION_NAMES:
        assert name in str(info.value)
