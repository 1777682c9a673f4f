"""dltips.optim.functional against torch's own optimizers: with numbers, the update of one torch
optimizer; with (K,) settings, the updates of K torch optimizers, one per member."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dltips.optim import functional as F
from dltips.optim.functional import over_members
from dltips.optim.torch_optimizers import PER_MEMBER, step_dtype

K, STEPS = 3, 6
SHAPES = [(4, 3), (3,)]

# A case: torch's class and every setting the function takes (as torch's class takes them).
CASES = {
    "sgd": (
        torch.optim.SGD,
        dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2, nesterov=False, maximize=False),
    ),
    "sgd-nesterov": (
        torch.optim.SGD,
        dict(lr=0.1, momentum=0.8, dampening=0.0, weight_decay=1e-2, nesterov=True, maximize=True),
    ),
    "sgd-plain": (
        torch.optim.SGD,
        dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    ),
    "adam": (
        torch.optim.Adam,
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, amsgrad=False, maximize=False),
    ),
    "adam-amsgrad": (
        torch.optim.Adam,
        dict(lr=1e-2, betas=(0.9, 0.9), eps=1e-8, weight_decay=0.0, amsgrad=True, maximize=True),
    ),
    "adamw": (
        torch.optim.AdamW,
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=False),
    ),
    "rmsprop": (
        torch.optim.RMSprop,
        dict(lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=1e-2, momentum=0.5, centered=True, maximize=False),
    ),
    "rmsprop-plain": (
        torch.optim.RMSprop,
        dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=True),
    ),
    "adagrad": (
        torch.optim.Adagrad,
        dict(lr=0.1, lr_decay=0.1, weight_decay=1e-2, eps=1e-6, initial_accumulator_value=0.1, maximize=True),
    ),
}


def initial_state(name: str, p: torch.Tensor, s: dict) -> dict:
    """A parameter's state before its first step, as torch creates it."""
    zeros = torch.zeros_like(p)
    if name == "sgd":
        return {}  # the momentum buffer comes from the first gradient
    step = {"step": torch.tensor(0.0)}
    if name in ("adam", "adamw"):
        return (
            step
            | {"exp_avg": zeros, "exp_avg_sq": zeros.clone()}
            | ({"max_exp_avg_sq": zeros.clone()} if s["amsgrad"] else {})
        )
    if name == "rmsprop":
        momentum = {"momentum_buffer": zeros.clone()} if torch.is_tensor(s["momentum"]) or s["momentum"] > 0 else {}
        return step | {"square_avg": zeros} | momentum | ({"grad_avg": zeros.clone()} if s["centered"] else {})
    return step | {"sum": zeros.add_(over_members(s["initial_accumulator_value"], p))}


def functional_step(name: str, params: list, grads: list, states: list[dict], s: dict) -> None:
    """One step of the function for `name`, its state in torch's per-parameter dicts."""
    s = dict(s)

    def column(key):
        return [st[key] for st in states if key in st]

    if name == "sgd":
        bufs = [st.get("momentum_buffer") for st in states]
        F.sgd(params, grads, bufs, **s)
        for st, buf in zip(states, bufs):
            if buf is not None:
                st["momentum_buffer"] = buf
    elif name in ("adam", "adamw"):
        beta1, beta2 = s.pop("betas")
        F.adam(
            params,
            grads,
            column("exp_avg"),
            column("exp_avg_sq"),
            column("max_exp_avg_sq"),
            column("step"),
            beta1=beta1,
            beta2=beta2,
            decoupled_weight_decay=name == "adamw",
            **s,
        )
    elif name == "rmsprop":
        F.rmsprop(
            params, grads, column("square_avg"), column("grad_avg"), column("momentum_buffer"), column("step"), **s
        )
    else:
        del s["initial_accumulator_value"]  # state, not an argument
        F.adagrad(params, grads, column("sum"), column("step"), **s)


def run(case: str, params: list[torch.Tensor], s: dict, grads: list[list[torch.Tensor]]) -> list[dict]:
    name = case.split("-")[0]
    states = [initial_state(name, p, s) for p in params]
    with torch.no_grad():
        for gs in grads:
            functional_step(name, params, gs, states, s)
    return states


def reference(cls, w0: list[torch.Tensor], s: dict, grads: list[list[torch.Tensor]]):
    """torch's optimizer `cls` over copies of w0, stepped on `grads`: (parameters, optimizer)."""
    params = [nn.Parameter(w.clone()) for w in w0]
    opt = cls(params, **s)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
    return params, opt


def random(shapes, steps: int, seed: int) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    g = torch.Generator().manual_seed(seed)
    w0 = [torch.randn(shape, generator=g) for shape in shapes]
    return w0, [[torch.randn(shape, generator=g) for shape in shapes] for _ in range(steps)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_functional_step_with_numbers_is_torchs(case):
    cls, s = CASES[case]
    w0, grads = random(SHAPES, STEPS, seed=0)
    ours = [w.clone() for w in w0]
    states = run(case, ours, s, grads)
    theirs, opt = reference(cls, w0, s, grads)
    for p, q, state in zip(ours, theirs, states, strict=True):
        torch.testing.assert_close(p, q.detach())
        assert state.keys() == opt.state[q].keys()
        for key, value in opt.state[q].items():
            torch.testing.assert_close(state[key], value, msg=lambda m: f"{key}: {m}")


def member_settings(s: dict, k: int) -> dict:
    """Member k's settings: every number scaled; member 2's optional terms (momentum, decay, …) 0."""
    optional = {"momentum", "dampening", "weight_decay", "lr_decay", "initial_accumulator_value"}
    if s.get("nesterov"):
        optional.remove("momentum")  # torch's Nesterov needs a momentum

    def one(key, v):
        if isinstance(v, bool):
            return v
        if isinstance(v, tuple):
            return tuple(one(key, x) for x in v)
        scales = (1.0, 2.0, 0.5) if key == "lr" else (1.0, 0.5, 0.0) if key in optional else (1.0, 0.5, 0.25)
        return v * scales[k]

    return {key: one(key, v) for key, v in s.items()}


def stacked_settings(members: list[dict]) -> dict:
    """Each number a (K,) tensor of the members' values (betas: a tuple of two)."""

    def stacked(values):
        if isinstance(values[0], bool):
            return values[0]
        if isinstance(values[0], tuple):
            return tuple(stacked(list(xs)) for xs in zip(*values))
        return torch.tensor(values)

    return {key: stacked([m[key] for m in members]) for key in members[0]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_functional_step_per_member_is_k_torch_optimizers(case):
    cls, s = CASES[case]
    members = [member_settings(s, k) for k in range(K)]
    w0, grads = random([(K, *shape) for shape in SHAPES], STEPS, seed=1)
    ours = [w.clone() for w in w0]
    states = run(case, ours, stacked_settings(members), grads)
    for k, settings in enumerate(members):
        theirs, opt = reference(cls, [w[k] for w in w0], settings, [[g[k] for g in gs] for gs in grads])
        for p, q, state in zip(ours, theirs, states, strict=True):
            torch.testing.assert_close(p[k], q.detach(), msg=lambda m: f"member {k}: {m}")
            for key, value in opt.state[q].items():  # member 2's momentum 0: torch keeps no buffer
                mine = state[key][k] if state[key].shape == p.shape else state[key]
                torch.testing.assert_close(mine, value, msg=lambda m: f"member {k}, {key}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "cls", [torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad]
)
def test_state_is_created_as_torch_creates_it(cls, dtype):
    """Keys, dtypes and devices of a fresh parameter's state, the step counter's among them (a CPU
    tensor whose dtype follows the default dtype): an upgrade of torch that changes them fails here."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        opts = []
        for make in (cls, PER_MEMBER[cls]):
            first, added = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2, 3))
            opt = (
                make([first], lr=0.1, momentum=0.5)
                if cls in (torch.optim.SGD, torch.optim.RMSprop)
                else make([first], lr=0.1)
            )
            opt.add_param_group({"params": [added]})  # its state is created at its first step
            first.grad, added.grad = torch.ones(3), torch.ones(2, 3)
            opt.step()
            opts.append({k: (v.dtype, v.device, v.shape) for k, v in opt.state[added].items()})
        assert opts[1] == opts[0]
        if "step" in opts[0]:
            assert opts[0]["step"] == (step_dtype(), torch.device("cpu"), torch.Size([]))
    finally:
        torch.set_default_dtype(default)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_the_decayed_gradient_is_written_into_one_tensor_per_parameter_across_steps(name):
    """With weight decay, g + λ·p goes into a scratch tensor the optimizer keeps per parameter
    (not into a new one every step), out of its state_dict; the steps stay torch's, exactly."""
    from dltips.optim import torch_optimizers

    torch.manual_seed(0)
    ours = [nn.Parameter(torch.randn(K, *shape)) for shape in SHAPES]
    theirs = [nn.Parameter(p.detach().clone()) for p in ours]
    mine = getattr(torch_optimizers, name)(ours, lr=0.01, weight_decay=0.1, foreach=False)
    reference = getattr(torch.optim, name)(theirs, lr=0.01, weight_decay=0.1, foreach=False)
    kept = None
    for _ in range(STEPS):
        for p, q in zip(ours, theirs):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        mine.step()
        reference.step()
        scratch = F.scratch_of(mine)
        pointers = [scratch[p].data_ptr() for p in ours]
        assert kept is None or pointers == kept
        kept = pointers
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q)
    assert "scratch" not in mine.state_dict()
    # The one tensor is what the update reads: g + λ·p written into it, by the same op.
    p, g = ours[0], torch.randn_like(ours[0])
    with torch.no_grad():  # as in a step
        for decay in (0.1, torch.tensor([0.0, 0.1, 0.2])):
            decayed = F.decayed(g, p, decay, scratch)
            assert decayed is scratch[p]
            assert torch.equal(decayed, F.decayed(g, p, decay))
