"""dltips.optim against the torch optimizers they reduce to and against the lecture's update rules."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dltips.config.errors import ConfigError
from dltips.config.optimizer import TORCH_OPTIMIZER_ERRORS, check_step_without_closure, optimizer_errors
from dltips.engine.build import build_optimizer
from dltips.nn import MLP, PReLU
from dltips.optim import Adagrad, Momentum, param_groups
from dltips.optim.schedules import constant, inverse_sqrt, step_decay

STEPS = 20


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))


def groups(model: nn.Module, lrs: tuple[float, float, float] = (0.1, 0.03, 0.3)) -> list[dict]:
    """Three groups with their own learning rates: first layer, middle layer, output layer."""
    return [{"params": list(model[i].parameters()), "lr": lr} for i, lr in zip((0, 2, 4), lrs)]


def batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n)]


def train_step(model: nn.Module, opt: torch.optim.Optimizer, batch) -> None:
    x, y = batch
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


def assert_same_params(a: nn.Module, b: nn.Module, **tol) -> None:
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=lambda m: f"{name}: {m}", **tol)


# ---------------------------------------------------------------------------------------------
# Adagrad
# ---------------------------------------------------------------------------------------------


def test_adagrad_matches_torch_adagrad_step_for_step():
    ours_model = small_model()
    torch_model = copy.deepcopy(ours_model)
    eps = 1e-10
    ours = Adagrad(groups(ours_model), lr=0.05, eps=eps)
    theirs = torch.optim.Adagrad(groups(torch_model), lr=0.05, eps=eps, lr_decay=0, initial_accumulator_value=0)
    assert_same_trajectory(ours_model, ours, torch_model, theirs)


def assert_same_trajectory(ours_model, ours, torch_model, theirs) -> None:
    """Both optimizers step on the same batches; parameters agree after every step."""
    start = copy.deepcopy(ours_model)
    for batch in batches(STEPS):
        train_step(ours_model, ours, batch)
        train_step(torch_model, theirs, batch)
        assert_same_params(ours_model, torch_model)
    # The run actually moved the parameters, in every group.
    for p, q in zip(ours_model.parameters(), start.parameters()):
        assert not torch.allclose(p, q)


def test_adagrad_matches_torch_with_random_gradients():
    torch.manual_seed(2)
    w0 = [torch.randn(4, 3), torch.randn(3)]
    ours_p = [nn.Parameter(w.clone()) for w in w0]
    torch_p = [nn.Parameter(w.clone()) for w in w0]
    ours = Adagrad([{"params": [ours_p[0]], "lr": 0.2}, {"params": [ours_p[1]]}], lr=0.01, eps=1e-10)
    theirs = torch.optim.Adagrad([{"params": [torch_p[0]], "lr": 0.2}, {"params": [torch_p[1]]}], lr=0.01, eps=1e-10)
    for _ in range(STEPS):
        for p, q in zip(ours_p, torch_p):
            g = torch.randn_like(p) * 10 ** torch.empty(()).uniform_(-2, 2)  # wildly varying scale
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
        for p, q in zip(ours_p, torch_p):
            torch.testing.assert_close(p, q)


def test_adagrad_lecture_form_written_out():
    """w^{t+1} = w^t − (η/√(t+1)) / √(mean_{i≤t} (g^i)²) · g^t, with known gradients."""
    lr = 0.3
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    gs = [
        torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64),
        torch.tensor([-0.2, 3.0, 0.1], dtype=torch.float64),
        torch.tensor([1.5, -0.5, -4.0], dtype=torch.float64),
    ]
    p = nn.Parameter(w0.clone())
    opt = Adagrad([p], lr=lr, eps=0.0)
    assert opt.effective_step(p) is None
    expected = w0.clone()
    for t, g in enumerate(gs):
        p.grad = g.clone()
        opt.step()
        eta_t = lr / math.sqrt(t + 1)
        sigma_t = torch.sqrt(sum(gi**2 for gi in gs[: t + 1]) / (t + 1))
        expected = expected - eta_t / sigma_t * g
        torch.testing.assert_close(p.detach(), expected)
        # effective_step(p) = η^t / σ^t at the last update.
        torch.testing.assert_close(opt.effective_step(p), eta_t / sigma_t)
    # Closed form after all three steps; the √(t+1) cancels: η/√(Σ_{i≤t} g_i²).
    total = w0 - sum(lr / torch.sqrt(sum(gi**2 for gi in gs[: t + 1])) * gs[t] for t in range(3))
    torch.testing.assert_close(p.detach(), total)


def test_adagrad_effective_step_uses_its_own_group():
    p, q = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    eps = 1e-8
    opt = Adagrad([{"params": [p], "lr": 0.5}, {"params": [q], "lr": 0.02}], eps=eps)
    gp, gq = torch.tensor([1.0, -3.0]), torch.tensor([0.25, 2.0])
    for _ in range(2):
        p.grad, q.grad = gp.clone(), gq.clone()
        opt.step()
    # After two equal gradients: t = 1, σ = √((g² + g²)/2) + ε = |g| + ε.
    torch.testing.assert_close(opt.effective_step(p), 0.5 / math.sqrt(2) / (gp.abs() + eps))
    torch.testing.assert_close(opt.effective_step(q), 0.02 / math.sqrt(2) / (gq.abs() + eps))


# ---------------------------------------------------------------------------------------------
# Momentum
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_momentum_matches_torch_sgd_with_constant_lr(momentum):
    ours_model = small_model()
    torch_model = copy.deepcopy(ours_model)
    ours = Momentum(groups(ours_model), lr=0.05, momentum=momentum)
    theirs = torch.optim.SGD(groups(torch_model), lr=0.05, momentum=momentum)
    assert_same_trajectory(ours_model, ours, torch_model, theirs)


def test_momentum_keeps_past_steps_when_lr_changes():
    """v ← λv − η^t g, θ ← θ + v: the lecture's rule; torch's SGD rescales old steps by the new η."""
    lam = 0.9
    lrs = [0.1, 0.1, 0.01, 0.01, 0.05, 0.2]
    torch.manual_seed(3)
    w0 = torch.randn(5, dtype=torch.float64)
    gs = [torch.randn(5, dtype=torch.float64) for _ in lrs]

    ours_p, torch_p = nn.Parameter(w0.clone()), nn.Parameter(w0.clone())
    ours = Momentum([ours_p], lr=lrs[0], momentum=lam)
    theirs = torch.optim.SGD([torch_p], lr=lrs[0], momentum=lam)
    theta, v = w0.clone(), torch.zeros_like(w0)
    for lr, g in zip(lrs, gs):
        for opt in (ours, theirs):
            opt.param_groups[0]["lr"] = lr
        ours_p.grad, torch_p.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
        before = theta.clone()
        v = lam * v - lr * g
        theta = theta + v
        torch.testing.assert_close(ours_p.detach(), theta)
        # effective_step is |v|, the distance each element just moved.
        torch.testing.assert_close(ours.effective_step(ours_p), (theta - before).abs())
    # torch's buffer form diverges from the lecture's once η changed.
    assert not torch.allclose(torch_p.detach(), theta, rtol=1e-3, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# State dict round trip (both optimizers)
# ---------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "adagrad": lambda params: Adagrad(params, lr=0.05, eps=1e-10, weight_decay=1e-3),
    "momentum": lambda params: Momentum(params, lr=0.05, momentum=0.9, weight_decay=1e-3),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_continues_the_same_trajectory(name, tmp_path):
    make = OPTIMIZERS[name]
    data = batches(STEPS, seed=4)

    model = small_model()
    opt = make(groups(model))
    for batch in data:
        train_step(model, opt, batch)

    first = small_model()
    first_opt = make(groups(first))
    for batch in data[: STEPS // 2]:
        train_step(first, first_opt, batch)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": first.state_dict(), "optimizer": first_opt.state_dict()}, path)
    del first, first_opt

    checkpoint = torch.load(path)
    resumed = small_model(seed=99)  # different init: everything must come from the checkpoint
    # Built with other learning rates on purpose: the saved groups' settings must win.
    resumed_opt = make(groups(resumed, lrs=(1.0, 1.0, 1.0)))
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    assert [g["lr"] for g in resumed_opt.param_groups] == [0.1, 0.03, 0.3]
    for batch in data[STEPS // 2 :]:
        train_step(resumed, resumed_opt, batch)

    assert_same_params(resumed, model, rtol=0, atol=0)

    # Restarting with fresh optimizer state (no accumulator / velocity) would not do that.
    fresh = small_model(seed=99)
    fresh.load_state_dict(checkpoint["model"])
    fresh_opt = make(groups(fresh))
    for batch in data[STEPS // 2 :]:
        train_step(fresh, fresh_opt, batch)
    assert not all(torch.allclose(p, q) for p, q in zip(fresh.parameters(), model.parameters()))


# ---------------------------------------------------------------------------------------------
# Argument validation
# ---------------------------------------------------------------------------------------------


def _param() -> list[nn.Parameter]:
    return [nn.Parameter(torch.zeros(2))]


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("cls", [Adagrad, Momentum])
def test_invalid_learning_rate(cls, lr):
    with pytest.raises(ValueError, match="learning rate"):
        cls(_param(), lr=lr)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5, float("nan")])
def test_invalid_momentum(momentum):
    with pytest.raises(ValueError, match="momentum"):
        Momentum(_param(), lr=0.1, momentum=momentum)


@pytest.mark.parametrize("eps", [-1e-8, float("nan")])
def test_invalid_adagrad_eps(eps):
    with pytest.raises(ValueError, match="epsilon"):
        Adagrad(_param(), lr=0.1, eps=eps)


@pytest.mark.parametrize("weight_decay", [-1e-4, float("nan")])
@pytest.mark.parametrize("cls", [Adagrad, Momentum])
def test_invalid_optimizer_weight_decay(cls, weight_decay):
    with pytest.raises(ValueError, match="weight_decay"):
        cls(_param(), lr=0.1, weight_decay=weight_decay)


@pytest.mark.parametrize("weight_decay", [-0.1, float("nan")])
def test_param_groups_invalid_weight_decay(weight_decay):
    with pytest.raises(ValueError, match=r"regularizer\.weight_decay"):
        param_groups(small_model(), weight_decay)


# ---------------------------------------------------------------------------------------------
# Building an optimizer from the config: torch's own errors under their config keys
# ---------------------------------------------------------------------------------------------

# (optimizer, a bad setting, its config key): every torch.optim check the table rewords.
TORCH_BAD_SETTINGS = [
    (torch.optim.SGD, dict(lr=-1.0), "lr"),
    (torch.optim.SGD, dict(momentum=-0.5), "momentum"),
    (torch.optim.SGD, dict(nesterov=True), "nesterov"),  # momentum 0
    (torch.optim.Adam, dict(betas=[2.0, 0.9]), "betas"),
    (torch.optim.Adam, dict(betas=[0.9, 1.0]), "betas"),
    (torch.optim.Adam, dict(eps=-1e-8), "eps"),
    (torch.optim.AdamW, dict(betas=[-0.1, 0.9]), "betas"),
    (torch.optim.Adamax, dict(eps=-1.0), "eps"),
    (torch.optim.NAdam, dict(momentum_decay=-1.0), "momentum_decay"),
    (torch.optim.RMSprop, dict(alpha=-0.5), "alpha"),
    (torch.optim.Adagrad, dict(lr_decay=-1.0), "lr_decay"),
    (torch.optim.Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (torch.optim.Adadelta, dict(rho=1.5), "rho"),
    (torch.optim.ASGD, dict(lambd=-1.0), "lambd"),
    (torch.optim.ASGD, dict(alpha=-1.0), "alpha"),
    (torch.optim.Rprop, dict(etas=[1.5, 1.2]), "etas"),
    (Momentum, dict(momentum=1.0), "momentum"),  # ours, in torch's wording
    (Adagrad, dict(eps=-1.0), "eps"),
]
if hasattr(torch.optim, "Adafactor"):
    TORCH_BAD_SETTINGS += [
        (torch.optim.Adafactor, dict(beta2_decay=0.5), "beta2_decay"),
        (torch.optim.Adafactor, dict(eps=[None, -1.0]), "eps"),
        (torch.optim.Adafactor, dict(d=0.5), "d"),
    ]


def optimizer_config(cls: type, **settings) -> DictConfig:
    """What configs/optimizer/*.yaml holds for `cls`, with `settings` added."""
    optimizer = {"_target_": f"{cls.__module__}.{cls.__name__}", "_partial_": True, "lr": 0.1, **settings}
    return OmegaConf.create({"optimizer": optimizer, "regularizer": {"weight_decay": 0.0}})


@pytest.mark.parametrize(
    "cls, settings, key", TORCH_BAD_SETTINGS, ids=[f"{c.__name__}-{k}" for c, _, k in TORCH_BAD_SETTINGS]
)
def test_optimizer_errors_name_the_config_key(cls, settings, key):
    with pytest.raises(ValueError):  # the reference: the constructor itself rejects the setting
        cls(small_model().parameters(), **({"lr": 0.1} | settings))
    with pytest.raises(ConfigError) as info:
        build_optimizer(optimizer_config(cls, **settings), small_model())
    message = str(info.value)
    assert message.startswith(f"Invalid optimizer.{key}: {settings.get(key, 0.1)!r}; allowed: "), message
    assert message.split("; allowed: ")[1] in {allowed for _, allowed in TORCH_OPTIMIZER_ERRORS.values()}


def test_optimizer_errors_leave_other_messages_alone():
    optimizer = optimizer_config(torch.optim.Adam).optimizer
    # A message the table does not know, and one it knows for a key the config does not set.
    for message in ("optimizer got an empty parameter list", "Invalid beta parameter at index 0: 2"):
        with pytest.raises(ValueError) as info:
            with optimizer_errors(optimizer):
                raise ValueError(message)
        assert not isinstance(info.value, ConfigError) and str(info.value) == message


class NeedsClosure(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 0.1):
        super().__init__(params, dict(lr=lr))

    def step(self, closure):
        return closure()


@pytest.mark.parametrize("cls", [torch.optim.LBFGS, NeedsClosure])
def test_optimizer_whose_step_needs_a_closure_is_rejected(cls):
    with pytest.raises(ConfigError) as info:
        check_step_without_closure(f"{cls.__module__}.{cls.__name__}", cls)
    assert str(info.value) == (
        f"Invalid optimizer._target_: '{cls.__module__}.{cls.__name__}'; allowed: an optimizer whose step() works "
        "without a closure (the loop calls step() after its own backward)"
    )


@pytest.mark.parametrize("cls", [torch.optim.SGD, torch.optim.Adam, torch.optim.LBFGS, Momentum, Adagrad])
def test_build_optimizer_takes_what_steps_without_a_closure(cls):
    """Each optimizer either builds and steps with step() alone, or is rejected before it is built."""
    model = small_model()
    try:
        optimizer = build_optimizer(optimizer_config(cls), model)
    except ConfigError as err:
        assert "optimizer._target_" in str(err)
        with pytest.raises(TypeError):  # what the loop would have met at its first step
            cls(model.parameters(), lr=0.1).step()
        return
    train_step(model, optimizer, batches(1)[0])


# ---------------------------------------------------------------------------------------------
# Weight decay through param_groups
# ---------------------------------------------------------------------------------------------


def decay_model(activation: str = "prelu") -> MLP:
    torch.manual_seed(5)
    return MLP(6, 3, depth=2, width=8, activation=activation)


def loss_and_grads(model: nn.Module, seed: int = 6) -> None:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(12, 6, generator=g), torch.randint(0, 3, (12,), generator=g)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()


@pytest.mark.parametrize("activation", ["prelu", "maxout"])
def test_param_groups_split_weights_from_biases_and_slopes(activation):
    model = decay_model(activation)
    decay, no_decay = param_groups(model, 1e-3)
    assert decay["weight_decay"] == 1e-3 and no_decay["weight_decay"] == 0.0
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    weights = [m.weight for m in model.linears()]
    biases = [m.bias for m in model.linears()]
    slopes = [m.slope for m in model.modules() if isinstance(m, PReLU)]
    assert len(slopes) == (2 if activation == "prelu" else 0)
    assert ids(decay["params"]) == ids(weights)
    assert ids(no_decay["params"]) == ids(biases + slopes)
    # Every parameter in exactly one group.
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_one_dimensional_weights_are_not_decayed():
    """torch's PReLU α and a norm's scale are named `weight` but are not weight matrices."""
    model = nn.Sequential(nn.Linear(3, 4), nn.PReLU(), nn.LayerNorm(4))
    decay, no_decay = param_groups(model, 1e-3)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 3])]
    assert len(no_decay["params"]) == 4  # linear bias, α, norm scale and shift


def test_sgd_with_param_groups_decays_weights_only():
    lr, wd = 0.1, 0.05
    model = decay_model()
    loss_and_grads(model)
    before = {n: (p.detach().clone(), p.grad.clone()) for n, p in model.named_parameters()}
    opt = torch.optim.SGD(param_groups(model, wd), lr=lr)
    opt.step()
    n_decayed = 0
    for name, p in model.named_parameters():
        w, g = before[name]
        if p.dim() >= 2:  # w ← (1 − ηλ)w − η ∂C/∂w
            expected = (1 - lr * wd) * w - lr * g
            n_decayed += 1
        else:  # biases and PReLU slopes: b ← b − η ∂C/∂b
            expected = w - lr * g
        torch.testing.assert_close(p.detach(), expected, msg=lambda m: f"{name}: {m}")
    assert n_decayed == 3


@pytest.mark.parametrize("name", ["adagrad", "momentum"])
def test_lecture_optimizers_add_weight_decay_to_the_gradient(name):
    lr, wd, lam, eps = 0.05, 0.1, 0.9, 1e-10
    model = decay_model()
    groups_ = param_groups(model, wd)
    opt = Adagrad(groups_, lr=lr, eps=eps) if name == "adagrad" else Momentum(groups_, lr=lr, momentum=lam)
    decayed = {id(p) for p in groups_[0]["params"]}
    state = {n: torch.zeros_like(p) for n, p in model.named_parameters()}  # Σg² or v
    for t in range(3):
        loss_and_grads(model, seed=t)
        before = {n: (p.detach().clone(), p.grad.clone()) for n, p in model.named_parameters()}
        opt.step()
        for n, p in model.named_parameters():
            w, g = before[n]
            if id(p) in decayed:
                g = g + wd * w  # ∇ of (λ/2)‖w‖²
            if name == "adagrad":
                state[n] = state[n] + g**2
                sigma = torch.sqrt(state[n] / (t + 1)) + eps
                expected = w - lr / math.sqrt(t + 1) / sigma * g
            else:
                state[n] = lam * state[n] - lr * g
                expected = w + state[n]
            torch.testing.assert_close(p.detach(), expected, msg=lambda m: f"step {t}, {n}: {m}")

    # The decay term mattered: the same run without it ends at other weights.
    plain = decay_model()
    plain_opt = (
        Adagrad(plain.parameters(), lr=lr, eps=eps)
        if name == "adagrad"
        else Momentum(plain.parameters(), lr=lr, momentum=lam)
    )
    for t in range(3):
        loss_and_grads(plain, seed=t)
        plain_opt.step()
    assert not torch.allclose(model.linears()[0].weight, plain.linears()[0].weight)


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------

TS = range(0, 50)


def test_constant_schedule():
    assert all(constant(t) == 1.0 for t in TS)


def test_inverse_sqrt_schedule():
    for t in TS:
        assert inverse_sqrt(t) == pytest.approx(1.0 / math.sqrt(t + 1))
    assert inverse_sqrt(0) == 1.0
    assert inverse_sqrt(3) == pytest.approx(0.5)  # η^3 = η/√4


@pytest.mark.parametrize("step_size, gamma", [(1, 0.5), (3, 0.1), (10, 0.9), (4, 1.0)])
def test_step_decay_schedule(step_size, gamma):
    for t in TS:
        assert step_decay(t, step_size, gamma) == pytest.approx(gamma ** (t // step_size))
    # Flat within an interval, one factor of gamma across its boundary.
    assert step_decay(step_size - 1, step_size, gamma) == 1.0
    assert step_decay(step_size, step_size, gamma) == pytest.approx(gamma)


@pytest.mark.parametrize("step_size", [0, -1, 1.5])
def test_step_decay_invalid_step_size(step_size):
    with pytest.raises(ValueError, match="step_size"):
        step_decay(3, step_size, 0.5)


@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.5, float("nan")])
def test_step_decay_invalid_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        step_decay(3, 2, gamma)


def test_no_weight_decay_is_one_group_of_every_parameter():
    model = decay_model("prelu")
    (group,) = param_groups(model, 0.0)
    assert group["weight_decay"] == 0.0 and len(group["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+optimizer.foo=1"], "Invalid optimizer.foo: 1; allowed: the arguments of torch.optim.SGD: lr, momentum"),
        (["optimizer=adam", "+optimizer.betas=[0.9]"], r"Invalid optimizer.betas: \[0.9\]; allowed: a list of 2"),
        (["+optimizer.dampening=abc"], "Invalid optimizer.dampening: 'abc'; allowed: a number"),
        (["optimizer=adam", "+optimizer.amsgrad=maybe"], "Invalid optimizer.amsgrad: 'maybe'; allowed: true or false"),
        (["optimizer._target_=torch.nn.Linear"], "Invalid optimizer._target_: 'torch.nn.Linear'; allowed: a torch"),
        (["optimizer=adagrad", "+optimizer.eps=[1]"], r"Invalid optimizer.eps: \[1\]; allowed: a number"),
    ],
)
def test_optimizer_values_are_checked_against_its_constructor_with_the_key(overrides, message, tmp_path):
    from dltips.config.errors import ConfigError
    from dltips.train import train
    from tests.conftest import compose_config

    with pytest.raises(ConfigError, match=message):
        train(compose_config([*overrides, "trainer.max_epochs=1"], tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # refused before anything is written
