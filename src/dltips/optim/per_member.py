"""Stacked members (dltips.nn.stacked) with hyper-parameters of their own.

A hyper-parameter whose value differs across the K members becomes a (K,) tensor in the stacked
optimizer's param group, broadcast over each parameter's member dimension ((K,) → (K, 1, …)).
torch's optimizers take only numbers there, so a stacked torch optimizer is rebuilt as its
subclass in dltips.optim.torch_optimizers, which takes (K,) tensors and keeps torch's state:
a member's slice of the state_dict loads into a plain torch optimizer. dltips.optim's own
optimizers broadcast natively.
"""

from __future__ import annotations

import copy
import inspect

import torch
from torch import Tensor

from dltips.checks import is_number
from dltips.optim.adagrad import Adagrad
from dltips.optim.functional import applies, over_members
from dltips.optim.momentum import Momentum
from dltips.optim.torch_optimizers import PER_MEMBER

__all__ = ["PER_MEMBER", "applies", "member_values", "over_members", "per_member", "supported"]


# Steps doing what the functional updates do not (grad scaling, graph capture, autograd through it).
TORCH_ONLY_FLAGS = ("fused", "capturable", "differentiable")


def per_member(
    stacked: torch.optim.Optimizer, members: list[torch.optim.Optimizer], force: bool = False
) -> torch.optim.Optimizer:
    """An optimizer over `stacked`'s parameters holding each member's hyper-parameters,
    `members[k]` being member k's own optimizer (same class, same param groups) over its own
    parameters. Call it right after building both: the stacked optimizer's settings and any
    state torch creates at construction (Adagrad's accumulator) become the members'.

    A torch optimizer whose members' settings differ comes back as a new optimizer of its
    PER_MEMBER class, built over `stacked`'s param groups (`stacked` itself is left as it was).
    When no hyper-parameter differs, or the class broadcasts natively, `stacked` itself comes
    back; `force=True` rebuilds a torch optimizer anyway, for a loop that sets per-member
    learning rates itself (a (K,) schedule factor).
    """
    cls = type(stacked)
    if not all(isinstance(stacked, type(m)) for m in members):
        raise ValueError(
            f"Invalid member optimizers {[type(m).__name__ for m in members]} for a stacked {cls.__name__}"
        )
    if any(len(m.param_groups) != len(stacked.param_groups) for m in members):
        counts = [len(m.param_groups) for m in members]
        raise ValueError(
            f"Invalid member optimizers with {counts} param groups; allowed: {len(stacked.param_groups)} each"
        )
    # Member settings, first the defaults (a group added later reads them), then group by group.
    settings = [[m.defaults for m in members], *(list(gs) for gs in zip(*(m.param_groups for m in members)))]
    differing = {
        key: values for groups in settings for key, values in member_settings(groups).items() if not same(values)
    }
    target = per_member_class(cls, differing, force)
    rebuild = bool(differing or force) and target is not cls
    flags = sorted({f for g in stacked.param_groups for f in TORCH_ONLY_FLAGS if g.get(f)}) if rebuild else []
    if flags:
        raise ValueError(f"Invalid optimizer.{flags[0]}: True with per-member hyper-parameters; allowed: false")
    optimizer = rebuilt(target, stacked) if rebuild else stacked
    first = next(p for g in optimizer.param_groups for p in g["params"])
    for group, groups in zip([optimizer.defaults, *optimizer.param_groups], settings, strict=True):
        for key, values in member_settings(groups).items():
            group[key] = as_member_tensor(values, first) if key in differing else groups[0][key]
    copy_initial_state(optimizer, members)
    return optimizer


def per_member_class(cls: type, differing: dict[str, list], force: bool) -> type:
    """The class whose step takes the `differing` settings as (K,) tensors: `cls` itself where it
    broadcasts natively (dltips.optim's), its PER_MEMBER subclass for torch's, `cls` where none
    is needed. Raises for a setting that may not differ, or a class that cannot take it."""
    target = cls if hasattr(cls, "per_member_keys") else PER_MEMBER.get(cls)
    for key, values in differing.items():
        if not all(numeric(v) for v in values) or (target is not None and key not in target.per_member_keys):
            raise ValueError(
                f"Invalid optimizer.{key}: {values!r}, one per member; allowed: one value all members share "
                "(it is not a hyper-parameter that can differ across members)"
            )
    if target is None and (differing or force):
        keys = ", ".join(sorted(differing) or ["lr"])  # forced: learning rates the loop sets per member
        raise ValueError(
            f"Invalid optimizer._target_: '{cls.__module__}.{cls.__name__}' with per-member {keys}; "
            "allowed: " + ", ".join(f"{c.__module__}.{c.__name__}" for c in supported())
        )
    return cls if target is None else target


def rebuilt(cls: type[torch.optim.Optimizer], optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """A new `cls` over `optimizer`'s param groups and defaults, built by its own __init__ as torch
    builds any optimizer (step hooks, profiler labels, the state torch creates up front)."""
    accepted = inspect.signature(cls).parameters  # AdamW takes no decoupled_weight_decay: always on
    defaults = {key: value for key, value in optimizer.defaults.items() if key in accepted}
    return cls([dict(group) for group in optimizer.param_groups], **defaults)


@torch.no_grad()
def keep_optimizer_members(optimizer: torch.optim.Optimizer, index: Tensor, replaced: dict) -> None:
    """The stacked optimizer narrowed in place to the members at `index` (K → S, in that order),
    over the parameters that replace its own (`replaced`: old → new, dltips.nn.stacked.keep_members):
    every per-element buffer's rows and every per-member setting's values; shared counters
    (Adam's step, …) stay as they are."""
    k = next(p for group in optimizer.param_groups for p in group["params"]).shape[0]

    def narrowed(v):
        if torch.is_tensor(v) and v.dim() == 1 and len(v) == k:
            return v[index.to(v.device)]
        return type(v)(narrowed(x) for x in v) if isinstance(v, (tuple, list)) else v

    for group in optimizer.param_groups:
        for i, p in enumerate(group["params"]):
            state = optimizer.state.pop(p, None)
            group["params"][i] = new = replaced[p]
            if state is not None:
                optimizer.state[new] = {
                    key: value[index] if torch.is_tensor(value) and value.shape == p.shape else value
                    for key, value in state.items()
                }
    for group in [optimizer.defaults, *optimizer.param_groups]:
        for key, value in group.items():
            if key != "params":
                group[key] = narrowed(value)


def member_values(group: dict, k: int) -> dict:
    """A (stacked) param group's settings as member k's own optimizer holds them."""

    def one(v):
        if torch.is_tensor(v) and v.dim() == 1:
            return v[k].item()
        return type(v)(one(x) for x in v) if isinstance(v, (tuple, list)) else v

    return {key: v if key == "params" else one(v) for key, v in group.items()}


def supported() -> list[type]:
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


def as_member_tensor(values: list, like: Tensor):
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


def member_optimizer_state(optimizer: torch.optim.Optimizer, k: int, full: dict | None = None) -> dict:
    """The optimizer's state_dict (`full`, if it is read already) as member k's own optimizer
    would hold it: every per-element buffer sliced (a view: copy it before keeping it), shared
    counters (Adam's step, …) copied, per-member numbers its own."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    full = optimizer.state_dict() if full is None else full
    state = {}
    for i, buffers in full["state"].items():
        shape = params[i].shape
        state[i] = {
            key: value[k] if torch.is_tensor(value) and value.shape == shape else copy.deepcopy(value)
            for key, value in buffers.items()
        }
    return {"state": state, "param_groups": [member_values(group, k) for group in full["param_groups"]]}


def stacked_optimizer_state(optimizer: torch.optim.Optimizer, states: list[dict], source: int) -> dict:
    """The inverse of member_optimizer_state: the members' own states stacked, shared counters
    from member `source`, the stacked optimizer's own groups (its per-member numbers)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for i, buffers in states[source]["state"].items():
        member_shape = params[int(i)].shape[1:]
        state[i] = {
            key: torch.stack([s["state"][i][key] for s in states])
            if torch.is_tensor(value) and value.shape == member_shape and value.dim() > 0
            else value
            for key, value in buffers.items()
        }
    return {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}
