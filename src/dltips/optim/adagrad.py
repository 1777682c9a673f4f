"""Adagrad exactly as the lecture writes it."""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

from dltips.checks import is_number, require, require_number
from dltips.optim.functional import decayed, over_members, scratch_of


class Adagrad(Optimizer):
    """w^{t+1} = w^t − (η^t / σ^t) · g^t, per parameter element, with

        η^t = η / √(t + 1)                       (1/t decay)
        σ^t = √( (1 / (t + 1)) Σ_{i=0..t} (g^i)² )  (root mean square of all past derivatives)

    The √(t + 1) cancels, so this is torch.optim.Adagrad(lr_decay=0, initial_accumulator_value=0)
    but for where ε sits (we add it to σ^t; torch adds it to √Σg²). It is *not* torch's
    `lr_decay`, which scales the rate by 1 / (1 + t·lr_decay) on top of the accumulator.
    `weight_decay` adds λ·w to g (the gradient of (λ/2)‖w‖²) before the update.

    For stacked members (dltips.optim.per_member) lr, eps and weight_decay may be (K,) tensors,
    one value per member, broadcast over each parameter's first dimension.
    """

    per_member_keys = frozenset({"lr", "initial_lr", "eps", "weight_decay"})

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0):
        # torch.optim's wording: these classes are optimizers first, config keys second.
        require(is_number(lr) and math.isfinite(lr) and lr > 0, "learning rate", lr, "a number > 0")
        require_number("epsilon value", eps)
        require_number("weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay))

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
                    state["step"] = torch.tensor(0.0)  # t, counted from 0 as in the lecture
                    state["sum_sq"] = torch.zeros_like(p)
                state["sum_sq"].addcmul_(g, g)
                t = state["step"].item()
                sigma_t = (state["sum_sq"] / (t + 1)).sqrt_().add_(over_members(group["eps"], p))
                eta_t = group["lr"] / math.sqrt(t + 1)  # a number, or (K,) per member
                if torch.is_tensor(eta_t):  # w -= g / (σ/η): the one temporary, σ, holds the quotient
                    p.addcdiv_(g, sigma_t.div_(over_members(eta_t, p)), value=-1)
                else:
                    p.addcdiv_(g, sigma_t, value=-eta_t)
                state["step"] += 1
        return loss

    @torch.no_grad()
    def effective_step(self, p: torch.Tensor) -> torch.Tensor | None:
        """η^t / σ^t for each element of `p` at its last update (None before the first)."""
        state = self.state.get(p)
        if not state:
            return None
        group = next(g for g in self.param_groups if any(q is p for q in g["params"]))
        t = state["step"].item() - 1
        sigma_t = (state["sum_sq"] / (t + 1)).sqrt().add_(over_members(group["eps"], p))
        return over_members(group["lr"], p) / math.sqrt(t + 1) / sigma_t
