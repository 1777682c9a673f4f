"""Stacked members (dltips.nn.stacked) with hyper-parameters of their own.

A hyper-parameter whose value differs across the K members becomes a (K,) tensor in the stacked
optimizer's param group, broadcast over each parameter's member dimension ((K,) → (K, 1, …)).
torch's optimizers take only numbers there, so a stacked torch optimizer becomes a subclass of
its own class whose `step` mirrors torch's single-tensor update op for op, with torch's state
keys and initialisation: its state_dict is torch's, and a member's slice of it loads into a
plain torch optimizer. dltips.optim's own optimizers broadcast natively.
"""
from __future__ import annotations

import torch
from torch.optim.optimizer import _get_scalar_dtype

from dltips.checks import is_number


def over_members(x, p: torch.Tensor):
    """x as it multiplies `p` (K, …): a (K,) tensor viewed (K, 1, …, 1); a number as it is."""
    return x.view(-1, *(1,) * (p.dim() - 1)) if torch.is_tensor(x) and x.dim() == 1 else x


def applies(x) -> bool:
    """Whether a term scaled by x is applied. A (K,) x differs across members, so it is nonzero
    for some: apply it to all (a zero leaves the other slices exact) rather than sync to look."""
    return torch.is_tensor(x) or x != 0


def closure_loss(closure):
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


# Each step below is torch's _single_tensor_<name> (torch/optim/<name>.py) with every scalar
# argument (alpha=, value=) that may be a (K,) tensor written as a broadcast product.


class SGD(torch.optim.SGD):
    """torch.optim.SGD whose momentum, dampening, weight_decay and lr may be (K,) tensors."""

    per_member_keys = frozenset({"lr", "initial_lr", "momentum", "dampening", "weight_decay"})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            lr, mu, wd, dampening = (group[k] for k in ("lr", "momentum", "weight_decay", "dampening"))
            if torch.is_tensor(mu):  # alone, a member with momentum 0 has no buffer: no dampening
                dampening = torch.where(mu != 0, dampening, torch.zeros_like(mu))
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                if applies(wd):
                    g = g.add(p * over_members(wd, p))
                if applies(mu):
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.detach().clone()
                    else:
                        buf.mul_(over_members(mu, p)).add_(g * over_members(1 - dampening, p))
                    g = g.add(buf * over_members(mu, p)) if group["nesterov"] else buf
                p.sub_(g * over_members(lr, p))
        return loss


class Adam(torch.optim.Adam):
    """torch.optim.Adam whose betas, eps, weight_decay and lr may be (K,) tensors."""

    per_member_keys = frozenset({"lr", "initial_lr", "betas", "eps", "weight_decay"})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())  # on the CPU, as torch keeps it
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                if applies(wd):
                    if group["decoupled_weight_decay"]:  # AdamW
                        p.mul_(1 - over_members(lr * wd, p))
                    else:
                        g = g.add(p * over_members(wd, p))
                b1, b2 = over_members(beta1, p), over_members(beta2, p)
                state["exp_avg"].lerp_(g, 1 - b1)
                state["exp_avg_sq"].mul_(b2).addcmul_(g, g * (1 - b2))
                t = state["step"].item()
                step_size = over_members(lr / (1 - beta1**t), p)
                bias_correction2_sqrt = over_members((1 - beta2**t) ** 0.5, p)
                v = state["exp_avg_sq"]
                if group["amsgrad"]:
                    v = torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                denom = (v.sqrt() / bias_correction2_sqrt).add_(over_members(eps, p))
                p.sub_(state["exp_avg"].div(denom).mul_(step_size))
        return loss


class AdamW(torch.optim.AdamW):
    """torch.optim.AdamW whose betas, eps, weight_decay and lr may be (K,) tensors."""

    per_member_keys = Adam.per_member_keys
    step = Adam.step  # AdamW is Adam with decoupled_weight_decay=True in its groups


class RMSprop(torch.optim.RMSprop):
    """torch.optim.RMSprop whose alpha, eps, weight_decay, momentum and lr may be (K,) tensors."""

    per_member_keys = frozenset({"lr", "initial_lr", "alpha", "eps", "weight_decay", "momentum"})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            lr, alpha, eps, wd, mu = (group[k] for k in ("lr", "alpha", "eps", "weight_decay", "momentum"))
            # A (K,) momentum is > 0 for some member: all get a buffer (0 · buffer for the others).
            has_momentum = torch.is_tensor(mu) or mu > 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=_get_scalar_dtype())
                    state["square_avg"] = torch.zeros_like(p)
                    if has_momentum:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(p)
                state["step"] += 1
                if applies(wd):
                    g = g.add(p * over_members(wd, p))
                a = over_members(alpha, p)
                square_avg = state["square_avg"].mul_(a).addcmul_(g, g * (1 - a))
                if group["centered"]:
                    grad_avg = state["grad_avg"].lerp_(g, 1 - a)
                    avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
                else:
                    avg = square_avg.sqrt()
                avg = avg.add_(over_members(eps, p))
                if has_momentum:
                    buf = state["momentum_buffer"].mul_(over_members(mu, p)).addcdiv_(g, avg)
                    p.sub_(buf * over_members(lr, p))
                else:
                    p.sub_(g.div(avg).mul_(over_members(lr, p)))
        return loss


class Adagrad(torch.optim.Adagrad):
    """torch.optim.Adagrad whose lr_decay, eps, weight_decay and lr may be (K,) tensors (and
    initial_accumulator_value, which per_member applies to the state torch creates up front)."""

    per_member_keys = frozenset({"lr", "initial_lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value"})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            lr, lr_decay, eps, wd = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if not state:  # a group added after construction; torch reads the defaults too
                    state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())
                    state["sum"] = torch.zeros_like(p).add_(over_members(self.defaults["initial_accumulator_value"], p))
                state["step"] += 1
                t = state["step"].item()
                if applies(wd):
                    g = g.add(p * over_members(wd, p))
                clr = over_members(lr / (1 + (t - 1) * lr_decay), p)
                std = state["sum"].addcmul_(g, g).sqrt().add_(over_members(eps, p))
                p.sub_(g.div(std).mul_(clr))
        return loss


# Exact classes: a subclass of SGD may update differently.
PER_MEMBER = {
    torch.optim.SGD: SGD, torch.optim.Adam: Adam, torch.optim.AdamW: AdamW,
    torch.optim.RMSprop: RMSprop, torch.optim.Adagrad: Adagrad,
}  # fmt: skip
# Steps doing what the single-tensor one does not (grad scaling, graph capture, autograd through it).
TORCH_ONLY_FLAGS = ("fused", "capturable", "differentiable")


def per_member(
    stacked: torch.optim.Optimizer, members: list[torch.optim.Optimizer], force: bool = False
) -> torch.optim.Optimizer:
    """`stacked` (built over the stacked parameters) holding each member's hyper-parameters,
    `members[k]` being member k's own optimizer (same class, same param groups) over its own
    parameters. Call it right after building both: the stacked optimizer's settings and any
    state torch creates at construction (Adagrad's accumulator) become the members'.

    When no hyper-parameter differs, `stacked` keeps its class and step (torch's own code);
    `force=True` switches it anyway, for a loop that sets per-member learning rates itself
    (a (K,) schedule factor).
    """
    cls = type(stacked)
    if not all(isinstance(stacked, type(m)) for m in members):
        raise ValueError(f"Invalid member optimizers {[type(m).__name__ for m in members]} for a stacked {cls.__name__}")
    pairs = [(stacked.defaults, [m.defaults for m in members])]
    pairs += list(zip(stacked.param_groups, [list(gs) for gs in zip(*(m.param_groups for m in members))], strict=True))
    differing = {key: values for _, groups in pairs for key, values in member_settings(groups).items() if not same(values)}
    target = cls if hasattr(cls, "per_member_keys") else PER_MEMBER.get(cls)
    for key, values in differing.items():
        if not all(numeric(v) for v in values) or (target is not None and key not in target.per_member_keys):
            raise ValueError(
                f"Invalid optimizer.{key}: {values!r}, one per member; allowed: one value all members share "
                "(it is not a hyper-parameter that can differ across members)"
            )
    switch = bool(differing or force) and target is not cls
    if switch and target is None:
        raise ValueError(
            f"Invalid optimizer._target_: '{cls.__module__}.{cls.__name__}' with per-member {', '.join(sorted(differing))}; "
            "allowed: " + ", ".join(f"{c.__module__}.{c.__name__}" for c in supported())
        )
    flags = sorted({f for g in stacked.param_groups for f in TORCH_ONLY_FLAGS if g.get(f)}) if switch else []
    if flags:
        raise ValueError(f"Invalid optimizer.{flags[0]}: True with per-member hyper-parameters; allowed: false")
    first = next(p for g in stacked.param_groups for p in g["params"])
    for group, groups in pairs:
        for key, values in member_settings(groups).items():
            group[key] = as_member_tensor(values, first) if key in differing else groups[0][key]
    copy_initial_state(stacked, members)
    if switch:
        stacked.__class__ = target
        stacked._patch_step_function()  # step hooks and profiler labels, as torch gives its own classes
    return stacked


def member_values(group: dict, k: int) -> dict:
    """A (stacked) param group's settings as member k's own optimizer holds them."""

    def one(v):
        if torch.is_tensor(v) and v.dim() == 1:
            return v[k].item()
        return type(v)(one(x) for x in v) if isinstance(v, (tuple, list)) else v

    return {key: v if key == "params" else one(v) for key, v in group.items()}


def supported() -> list[type]:
    from dltips.optim import Adagrad, Momentum  # here: dltips.optim imports this module's helpers

    return [*PER_MEMBER, Adagrad, Momentum]


def member_settings(groups: list[dict]) -> dict[str, list]:
    """key → [member 0's value, …] for every setting of one param group (not its parameters)."""
    keys = [k for k in groups[0] if k != "params"]
    if any(set(g) - {"params"} != set(keys) for g in groups):
        raise ValueError(f"Invalid optimizer param groups: the members' keys differ: {[sorted(g) for g in groups]}")
    return {key: [g[key] for g in groups] for key in keys}


def plain(v):
    """A setting as a comparable value: numbers (and 1-element tensors) as floats, tuples elementwise."""
    if is_number(v) or (torch.is_tensor(v) and v.numel() == 1):
        return float(v)
    return tuple(plain(x) for x in v) if isinstance(v, (tuple, list)) else v


def numeric(v) -> bool:
    v = plain(v)
    return isinstance(v, float) or (isinstance(v, tuple) and all(isinstance(x, float) for x in v))


def same(values: list) -> bool:
    return all(plain(v) == plain(values[0]) for v in values)


def as_member_tensor(values: list, like: torch.Tensor):
    """(K,) tensor of the members' values; for tuples (Adam's betas) one per element that differs."""
    if isinstance(values[0], (tuple, list)):
        return type(values[0])(as_member_tensor(list(xs), like) for xs in zip(*values))
    if same(values):
        return plain(values[0])
    return torch.tensor([plain(v) for v in values], dtype=like.dtype, device=like.device)


@torch.no_grad()
def copy_initial_state(stacked: torch.optim.Optimizer, members: list[torch.optim.Optimizer]) -> None:
    """State created at construction (torch's Adagrad fills `sum` with initial_accumulator_value)
    becomes the members' own, slice by slice."""
    groups = zip(stacked.param_groups, zip(*(m.param_groups for m in members)))
    for group, member_groups in groups:
        for i, p in enumerate(group["params"]):
            qs = [g["params"][i] for g in member_groups]
            if p.shape != (len(members), *qs[0].shape):
                shapes = f"{tuple(p.shape)} for {len(members)} members of shape {tuple(qs[0].shape)}"
                raise ValueError(f"Invalid stacked parameter of shape {shapes}")
            for key, value in stacked.state.get(p, {}).items():
                if torch.is_tensor(value) and value.shape == p.shape:
                    value.copy_(torch.stack([m.state[q][key] for m, q in zip(members, qs)]))
