"""Gradient descent with momentum exactly as the lecture writes it."""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

from dltips.checks import is_number, require, require_number
from dltips.optim.functional import add_scaled_, decayed, over_members, scratch_of


class Momentum(Optimizer):
    """v^0 = 0;  v^{t+1} = λ·v^t − η·∇C(θ^t);  θ^{t+1} = θ^t + v^{t+1}.

    v is the movement itself, a weighted sum of all past gradient steps. With a constant η this
    is torch.optim.SGD(momentum=λ), whose buffer b is v = −η·b. When η changes, torch rescales
    the whole accumulated velocity by the new η; here the past steps keep the η they were taken
    with. `weight_decay` adds λ_wd·θ to the gradient.

    For stacked members (dltips.optim.per_member) lr, momentum and weight_decay may be (K,)
    tensors, one value per member, broadcast over each parameter's first dimension.
    """

    per_member_keys = frozenset({"lr", "initial_lr", "momentum", "weight_decay"})

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.9, weight_decay: float = 0.0):
        # torch.optim's wording: these classes are optimizers first, config keys second.
        require(is_number(lr) and math.isfinite(lr) and lr > 0, "learning rate", lr, "a number > 0")
        require(is_number(momentum) and 0.0 <= momentum < 1.0, "momentum value", momentum, "0 <= momentum < 1")
        require_number("weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = decayed(p.grad, p, group["weight_decay"], scratch_of(self))
                state = self.state[p]
                if not state:
                    state["velocity"] = torch.zeros_like(p)
                v = state["velocity"]
                add_scaled_(v.mul_(over_members(group["momentum"], p)), g, group["lr"], -1.0)
                p.add_(v)
        return loss

    @torch.no_grad()
    def effective_step(self, p: torch.Tensor) -> torch.Tensor | None:
        """|v|, the distance each element of `p` moved at its last update (None before the first)."""
        state = self.state.get(p)
        return None if not state else state["velocity"].abs()
