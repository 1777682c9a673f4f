"""dltips.optim.per_member: K stacked members, each with its own hyper-parameters, against K
separate optimizers (torch's built-ins and ours) stepping on the same gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dltips.nn import MLP
from dltips.nn.stacked import keep_members, stack
from dltips.optim import Adagrad, Momentum, member_values, param_groups, per_member
from dltips.optim.per_member import PER_MEMBER, keep_optimizer_members, member_optimizer_state

K, STEPS, MORE = 3, 10, 4
WEIGHT_DECAYS = (1e-2, 0.0, 5e-2)  # decay group only; biases and PReLU slopes get none


def hyper(**columns) -> list[dict]:
    """Member k's keyword arguments: {"lr": (a, b, c)} → [{"lr": a}, {"lr": b}, {"lr": c}]."""
    return [{key: values[k] for key, values in columns.items()} for k in range(K)]


LRS = (0.05, 0.02, 0.1)
CONFIGS = {
    # Member 2 has no momentum: alone it keeps no buffer and ignores its dampening.
    "sgd": (torch.optim.SGD, hyper(lr=LRS, momentum=(0.9, 0.5, 0.0), dampening=(0.0, 0.1, 0.3))),
    "sgd-nesterov": (torch.optim.SGD, [c | {"nesterov": True} for c in hyper(lr=LRS, momentum=(0.9, 0.5, 0.7))]),
    "adam": (torch.optim.Adam, hyper(lr=LRS, betas=((0.9, 0.999), (0.8, 0.99), (0.9, 0.9)), eps=(1e-8, 1e-6, 1e-3))),
    "adam-amsgrad": (
        torch.optim.Adam,
        [c | {"amsgrad": True} for c in hyper(lr=LRS, betas=((0.9, 0.999), (0.5, 0.999), (0.7, 0.999)))],
    ),
    "adamw": (torch.optim.AdamW, hyper(lr=LRS, betas=((0.9, 0.999), (0.8, 0.99), (0.95, 0.9)), eps=(1e-8, 1e-6, 1e-3))),
    "rmsprop": (
        torch.optim.RMSprop,
        hyper(lr=LRS, alpha=(0.99, 0.9, 0.5), eps=(1e-8, 1e-6, 1e-3), momentum=(0.0, 0.5, 0.9)),
    ),
    "rmsprop-centered": (
        torch.optim.RMSprop,
        [c | {"centered": True} for c in hyper(lr=LRS, alpha=(0.99, 0.9, 0.5), momentum=(0.3, 0.0, 0.9))],
    ),
    "adagrad-torch": (
        torch.optim.Adagrad,
        hyper(lr=LRS, lr_decay=(0.0, 0.01, 0.1), eps=(1e-10, 1e-6, 1e-3), initial_accumulator_value=(0.0, 0.1, 0.5)),
    ),
    "adagrad": (Adagrad, hyper(lr=LRS, eps=(1e-10, 1e-6, 1e-3))),
    "momentum": (Momentum, hyper(lr=LRS, momentum=(0.9, 0.5, 0.0))),
}


def factor(t: int, k: int) -> float:
    """Member k's schedule: its own decay rate."""
    return 1.0 / (1.0 + 0.2 * (k + 1) * t)


def models() -> list[nn.Module]:
    out = []
    for k in range(K):
        torch.manual_seed(k)
        out.append(MLP(4, 3, depth=2, width=5, activation="prelu"))
    return out


def build(cls, config: dict, model: nn.Module, weight_decay: float) -> torch.optim.Optimizer:
    # Both groups whatever the decay: members must share the group structure.
    decay, no_decay = param_groups(model, 1.0)
    opt = cls([decay | {"weight_decay": weight_decay}, no_decay | {"weight_decay": 0.0}], **config)
    for group in opt.param_groups:  # as dltips.engine.build does: schedules scale it
        group.setdefault("initial_lr", group["lr"])
    return opt


def setup(name: str):
    cls, configs = CONFIGS[name]
    members = models()
    stacked_model = stack(members, [torch.Generator() for _ in members])
    member_opts = [build(cls, c, m, wd) for c, m, wd in zip(configs, members, WEIGHT_DECAYS)]
    stacked_opt = per_member(build(cls, configs[0], stacked_model, WEIGHT_DECAYS[0]), member_opts)
    return cls, members, member_opts, stacked_model, stacked_opt


def gradients(members: list[nn.Module], steps: int, seed: int = 7) -> list[list[list[torch.Tensor]]]:
    """[step][member][parameter] random gradients, the same for both ways of stepping."""
    g = torch.Generator().manual_seed(seed)
    return [[[torch.randn(p.shape, generator=g) for p in m.parameters()] for m in members] for _ in range(steps)]


def step_member(model, opt, grads, t, k) -> None:
    for group in opt.param_groups:
        group["lr"] = group["initial_lr"] * factor(t, k)
    for p, g in zip(model.parameters(), grads):
        p.grad = g.clone()
    opt.step()


def step_members(members, opts, grads, t) -> None:
    for k, (model, opt) in enumerate(zip(members, opts)):
        step_member(model, opt, grads[k], t, k)


def step_stacked(model, opt, grads, t) -> None:
    factors = torch.tensor([factor(t, k) for k in range(K)])
    for group in opt.param_groups:
        group["lr"] = group["initial_lr"] * factors
    for p, *gs in zip(model.parameters(), *grads):
        p.grad = torch.stack(gs)


def assert_member_matches(stacked_model, stacked_opt, k, model, opt) -> None:
    for (name, p), q in zip(stacked_model.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p[k], q, msg=lambda m: f"member {k}, {name}: {m}")
        for key, value in opt.state[q].items():
            mine = stacked_opt.state[p][key]
            torch.testing.assert_close(
                mine[k] if mine.shape == p.shape else mine, value, msg=lambda m: f"member {k}, {name} {key}: {m}"
            )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_members_left_in_a_narrowed_stack_step_on_as_their_own_optimizers(name):
    """keep_members + keep_optimizer_members (a stack's done members leaving): the members kept,
    in their new order, go on stepping as their own optimizers would, their settings and state
    narrowed with them; the stack's parameters are new objects of the new size."""
    cls, members, member_opts, stacked_model, stacked_opt = setup(name)
    grads = gradients(members, STEPS + MORE)
    for t in range(STEPS):
        step_members(members, member_opts, grads[t], t)
        step_stacked(stacked_model, stacked_opt, grads[t], t)
        stacked_opt.step()
    kept = [2, 0]
    old = list(stacked_model.parameters())
    replaced = keep_members(stacked_model, torch.tensor(kept))
    keep_optimizer_members(stacked_opt, torch.tensor(kept), replaced)
    assert [replaced[p] for p in old] == list(stacked_model.parameters())
    assert all(p.shape[0] == len(kept) for p in stacked_model.parameters())
    assert {id(p) for g in stacked_opt.param_groups for p in g["params"]} == {id(p) for p in replaced.values()}
    for t in range(STEPS, STEPS + MORE):
        factors = torch.tensor([factor(t, k) for k in kept])
        for group in stacked_opt.param_groups:
            group["lr"] = group["initial_lr"] * factors
        for p, *gs in zip(stacked_model.parameters(), *(grads[t][k] for k in kept)):
            p.grad = torch.stack(gs)
        stacked_opt.step()
        for k in kept:
            step_member(members[k], member_opts[k], grads[t][k], t, k)
    for s, k in enumerate(kept):
        assert_member_matches(stacked_model, stacked_opt, s, members[k], member_opts[k])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_stacked_members_step_as_their_own_optimizers(name):
    cls, members, member_opts, stacked_model, stacked_opt = setup(name)
    assert isinstance(stacked_opt, cls) and stacked_opt.state_dict().keys() == member_opts[0].state_dict().keys()
    assert torch.is_tensor(stacked_opt.param_groups[0]["lr"]) and stacked_opt.param_groups[0]["lr"].shape == (K,)
    grads = gradients(members, STEPS + MORE)
    for t in range(STEPS):
        step_members(members, member_opts, grads[t], t)
        step_stacked(stacked_model, stacked_opt, grads[t], t)
        stacked_opt.step()
        for k in range(K):
            assert_member_matches(stacked_model, stacked_opt, k, members[k], member_opts[k])

    # Member k's slice of the state resumes alone in a plain optimizer, along the same path.
    for k in range(K):
        alone = copy.deepcopy(members[k])
        with torch.no_grad():
            for p, q in zip(stacked_model.parameters(), alone.parameters()):
                q.copy_(p[k])
        state = member_optimizer_state(stacked_opt, k)
        state["param_groups"] = [member_values(g, k) for g in state["param_groups"]]
        resumed = build(cls, CONFIGS[name][1][k] | {"lr": 1.0}, alone, 0.5)  # the saved settings must win
        resumed.load_state_dict(state)
        assert type(resumed) is cls
        for t in range(STEPS, STEPS + MORE):
            step_member(members[k], member_opts[k], grads[t][k], t, k)
            step_member(alone, resumed, grads[t][k], t, k)
        for p, q in zip(alone.parameters(), members[k].parameters()):
            torch.testing.assert_close(p, q)


def test_adagrad_effective_step_per_member():
    _, members, member_opts, stacked_model, stacked_opt = setup("adagrad")
    grads = gradients(members, 2)
    for t in range(2):
        step_members(members, member_opts, grads[t], t)
        step_stacked(stacked_model, stacked_opt, grads[t], t)
        stacked_opt.step()
    for p, *qs in zip(stacked_model.parameters(), *(m.parameters() for m in members)):
        mine = stacked_opt.effective_step(p)
        for k, (q, opt) in enumerate(zip(qs, member_opts)):
            torch.testing.assert_close(mine[k], opt.effective_step(q))


@pytest.mark.parametrize("cls", [torch.optim.SGD, torch.optim.Adam, Momentum])
def test_nothing_differs_keeps_the_optimizer_as_it_is(cls):
    members = models()
    stacked_model = stack(members, [torch.Generator() for _ in members])
    opts = [build(cls, {"lr": 0.1}, m, 1e-3) for m in members]
    stacked = build(cls, {"lr": 0.1}, stacked_model, 1e-3)
    assert per_member(stacked, opts) is stacked and type(stacked) is cls
    assert all(not torch.is_tensor(v) for g in stacked.param_groups for k, v in g.items() if k != "params")


def test_force_switches_for_per_member_schedules_alone():
    members = models()
    stacked_model = stack(members, [torch.Generator() for _ in members])
    opts = [build(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, m, 1e-3) for m in members]
    stacked = per_member(build(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, stacked_model, 1e-3), opts, force=True)
    assert type(stacked) is not torch.optim.SGD and isinstance(stacked, torch.optim.SGD)
    grads = gradients(members, 3)
    for t in range(3):
        step_members(members, opts, grads[t], t)
        step_stacked(stacked_model, stacked, grads[t], t)
        stacked.step()
    for k in range(K):
        assert_member_matches(stacked_model, stacked, k, members[k], opts[k])


def test_per_member_builds_a_new_optimizer_and_leaves_the_stacked_one_as_it_was():
    members = models()
    stacked_model = stack(members, [torch.Generator() for _ in members])
    opts = [build(torch.optim.Adam, {"lr": lr}, m, 1e-3) for lr, m in zip(LRS, members)]
    stacked = build(torch.optim.Adam, {"lr": LRS[0]}, stacked_model, 1e-3)
    optimizer = per_member(stacked, opts)
    assert optimizer is not stacked and type(optimizer) is PER_MEMBER[torch.optim.Adam]
    assert type(stacked) is torch.optim.Adam and stacked.param_groups[0]["lr"] == LRS[0]  # no class swap
    for group, own in zip(stacked.param_groups, optimizer.param_groups, strict=True):
        assert group is not own and all(p is q for p, q in zip(group["params"], own["params"], strict=True))
    # Built by its own __init__: torch's step hooks work as on any optimizer.
    steps = []
    optimizer.register_step_post_hook(lambda opt, args, kwargs: steps.append(opt))
    step_stacked(stacked_model, optimizer, gradients(members, 1)[0], 0)
    optimizer.step()
    assert steps == [optimizer]


def test_member_values():
    group = {
        "params": [0, 1],
        "lr": torch.tensor([0.1, 0.2]),
        "betas": (torch.tensor([0.9, 0.8]), 0.999),
        "amsgrad": False,
    }
    assert member_values(group, 1) == {
        "params": [0, 1],
        "lr": pytest.approx(0.2),
        "betas": (pytest.approx(0.8), 0.999),
        "amsgrad": False,
    }


@pytest.mark.parametrize(
    "cls, configs, key",
    [
        (torch.optim.SGD, [{"momentum": 0.9, "nesterov": k == 0} for k in range(K)], "nesterov"),
        (torch.optim.Adam, [{"amsgrad": k == 1} for k in range(K)], "amsgrad"),
        (torch.optim.RMSprop, [{"centered": k == 2} for k in range(K)], "centered"),
        (torch.optim.Adam, [{"lr": 0.1 * (k + 1), "maximize": k == 0} for k in range(K)], "maximize"),
    ],
)
def test_differing_structural_settings_are_rejected(cls, configs, key):
    members = models()
    stacked = build(cls, configs[0], stack(members, [torch.Generator() for _ in members]), 1e-3)
    with pytest.raises(
        ValueError, match=rf"^Invalid optimizer\.{key}: \[.*\], one per member; allowed: one value all members share"
    ):
        per_member(stacked, [build(cls, c, m, 1e-3) for c, m in zip(configs, members)])


def test_torch_only_flags_are_rejected_with_per_member_settings():
    members = models()
    stacked = build(
        torch.optim.Adam, {"differentiable": True}, stack(members, [torch.Generator() for _ in members]), 1e-3
    )
    opts = [
        build(torch.optim.Adam, {"lr": 0.1 * (k + 1), "differentiable": True}, m, 1e-3) for k, m in enumerate(members)
    ]
    with pytest.raises(ValueError, match=r"^Invalid optimizer\.differentiable: True with per-member"):
        per_member(stacked, opts)


def test_unsupported_optimizer_is_rejected_when_settings_differ():
    members = models()
    stacked = build(torch.optim.Adamax, {}, stack(members, [torch.Generator() for _ in members]), 1e-3)
    opts = [build(torch.optim.Adamax, {"lr": 0.1 * (k + 1)}, m, 1e-3) for k, m in enumerate(members)]
    with pytest.raises(ValueError) as info:
        per_member(stacked, opts)
    message = str(info.value)
    assert message.startswith(
        "Invalid optimizer._target_: 'torch.optim.adamax.Adamax' with per-member initial_lr, lr; allowed: "
    )
    assert "torch.optim.sgd.SGD" in message and "dltips.optim.momentum.Momentum" in message
    # The same optimizer is fine when the members agree: nothing to broadcast.
    same = [build(torch.optim.Adamax, {}, m, 1e-3) for m in members]
    assert per_member(stacked, same) is stacked
