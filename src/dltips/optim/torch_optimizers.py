"""torch's element-wise optimizers whose settings may be (K,) tensors, one value per member.

Each is a subclass of torch's class whose `step` gathers parameters, gradients and state and
calls the update of dltips.optim.functional. State keys and initialisation are torch's, so the
state_dict is torch's, and a member's slice of it loads into a plain torch optimizer.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dltips.optim import functional as F
from dltips.optim.functional import applies, over_members


def closure_loss(closure):
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def step_dtype() -> torch.dtype:
    """The dtype torch keeps a step counter in, on the CPU: float64 when that is the default
    dtype, float32 otherwise (tests/test_optim_functional.py holds torch to it)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def with_grads(group: dict) -> list[Tensor]:
    return [p for p in group["params"] if p.grad is not None]


def states_of(optimizer: torch.optim.Optimizer, group: dict, params: list[Tensor], fresh) -> list[dict]:
    """Each parameter's state, made by `fresh(p, group)` (torch's keys and dtypes) on its first step."""
    for p in params:
        if not optimizer.state[p]:
            optimizer.state[p].update(fresh(p, group))
    return [optimizer.state[p] for p in params]


def column(states: list[dict], key: str) -> list[Tensor]:
    """Each state's `key`, for the parameters that have one (none: an empty list)."""
    return [s[key] for s in states if key in s]


class SGD(torch.optim.SGD):
    """torch.optim.SGD whose lr, momentum, dampening and weight_decay may be (K,) tensors."""

    per_member_keys = frozenset({"lr", "initial_lr", "momentum", "dampening", "weight_decay"})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params = with_grads(group)
            has_momentum = applies(group["momentum"])  # without, torch keeps no state at all
            bufs = [self.state[p].get("momentum_buffer") if has_momentum else None for p in params]
            F.sgd(
                params,
                [p.grad for p in params],
                bufs,
                lr=group["lr"],
                momentum=group["momentum"],
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
                scratch=F.scratch_of(self),
            )
            if has_momentum:
                for p, buf in zip(params, bufs):
                    self.state[p]["momentum_buffer"] = buf
        return loss


class Adam(torch.optim.Adam):
    """torch.optim.Adam whose lr, betas, eps and weight_decay may be (K,) tensors."""

    per_member_keys = frozenset({"lr", "initial_lr", "betas", "eps", "weight_decay"})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params = with_grads(group)
            states = states_of(
                self,
                group,
                params,
                lambda p, group: (
                    {"step": torch.tensor(0.0, dtype=step_dtype()), "exp_avg": torch.zeros_like(p)}
                    | {"exp_avg_sq": torch.zeros_like(p)}
                    | ({"max_exp_avg_sq": torch.zeros_like(p)} if group["amsgrad"] else {})
                ),
            )
            beta1, beta2 = group["betas"]
            F.adam(
                params,
                [p.grad for p in params],
                column(states, "exp_avg"),
                column(states, "exp_avg_sq"),
                column(states, "max_exp_avg_sq"),
                column(states, "step"),
                amsgrad=group["amsgrad"],
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                maximize=group["maximize"],
                scratch=F.scratch_of(self),
            )
        return loss


class AdamW(torch.optim.AdamW):
    """torch.optim.AdamW whose lr, betas, eps and weight_decay may be (K,) tensors."""

    per_member_keys = Adam.per_member_keys
    step = Adam.step  # AdamW is Adam with decoupled_weight_decay=True in its groups


class RMSprop(torch.optim.RMSprop):
    """torch.optim.RMSprop whose lr, alpha, eps, weight_decay and momentum may be (K,) tensors."""

    per_member_keys = frozenset({"lr", "initial_lr", "alpha", "eps", "weight_decay", "momentum"})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params = with_grads(group)
            states = states_of(
                self,
                group,
                params,
                lambda p, group: (
                    {"step": torch.zeros((), dtype=step_dtype()), "square_avg": torch.zeros_like(p)}
                    | ({"momentum_buffer": torch.zeros_like(p)} if applies(group["momentum"]) else {})
                    | ({"grad_avg": torch.zeros_like(p)} if group["centered"] else {})
                ),
            )
            F.rmsprop(
                params,
                [p.grad for p in params],
                column(states, "square_avg"),
                column(states, "grad_avg"),
                column(states, "momentum_buffer"),
                column(states, "step"),
                lr=group["lr"],
                alpha=group["alpha"],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                momentum=group["momentum"],
                centered=group["centered"],
                maximize=group["maximize"],
                scratch=F.scratch_of(self),
            )
        return loss


class Adagrad(torch.optim.Adagrad):
    """torch.optim.Adagrad whose lr, lr_decay, eps and weight_decay may be (K,) tensors (and
    initial_accumulator_value, which per_member applies to the state torch creates up front)."""

    per_member_keys = frozenset({"lr", "initial_lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value"})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params = with_grads(group)
            # New state only for a group added after construction; torch reads the defaults too.
            states = states_of(
                self,
                group,
                params,
                lambda p, group: (
                    {"step": torch.tensor(0.0, dtype=step_dtype())}
                    | {"sum": torch.zeros_like(p).add_(over_members(self.defaults["initial_accumulator_value"], p))}
                ),
            )
            F.adagrad(
                params,
                [p.grad for p in params],
                column(states, "sum"),
                column(states, "step"),
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                lr_decay=group["lr_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
                scratch=F.scratch_of(self),
            )
        return loss


# Exact classes: a subclass of SGD may update differently.
PER_MEMBER = {
    torch.optim.SGD: SGD,
    torch.optim.Adam: Adam,
    torch.optim.AdamW: AdamW,
    torch.optim.RMSprop: RMSprop,
    torch.optim.Adagrad: Adagrad,
}
