"""torch's element-wise updates as plain functions whose hyper-parameters may differ across members.

Each function is torch's `_single_tensor_<name>` (torch/optim/<name>.py) op for op, on lists of
parameters, gradients and state tensors it updates in place. Every hyper-parameter is a number or
a (K,) tensor, one value per member, broadcast over each parameter's first dimension (its K stacked
members): a scalar argument of torch's (alpha=, value=) becomes a broadcast product here.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

PerMember = float | Tensor  # a number all members share, or a (K,) tensor: one per member


def over_members(x, p: Tensor):
    """x as it multiplies `p` (K, …): a (K,) tensor viewed (K, 1, …, 1); a number as it is."""
    return x.view(-1, *(1,) * (p.dim() - 1)) if torch.is_tensor(x) and x.dim() == 1 else x


def applies(x) -> bool:
    """Whether a term scaled by x is applied. A (K,) x differs across members, so it is nonzero
    for some: apply it to all (a zero leaves the other slices exact) rather than sync to look."""
    return torch.is_tensor(x) or x != 0


def decayed(g: Tensor, p: Tensor, weight_decay: PerMember, scratch: Scratch | None = None) -> Tensor:
    """g + λ·p, the gradient with L2 weight decay (g itself when λ is 0): a new tensor, or, with
    `scratch`, p's own tensor there, overwritten (the same op, written into it)."""
    if not applies(weight_decay):
        return g
    out = None
    if scratch is not None:
        out = scratch.get(p)
        if out is None or out.shape != p.shape or out.dtype != p.dtype or out.device != p.device:
            out = scratch[p] = torch.empty_like(p)
    if torch.is_tensor(weight_decay):
        return torch.addcmul(g, p, over_members(weight_decay, p), out=out)
    return torch.add(g, p, alpha=weight_decay, out=out)


# parameter → a tensor of its shape that an update overwrites every step (the decayed gradient)
# instead of allocating one: a stack's parameters take megabytes, and a fresh block of that size
# each step (its pages faulted in again) made a 64-member step with weight decay 10% slower.
# Held by the optimizer (scratch_of), out of its state_dict; a tensor goes with its parameter.
Scratch = WeakIdKeyDictionary


def scratch_of(optimizer: torch.optim.Optimizer) -> Scratch:
    """The optimizer's scratch tensors, made on first use (a copied or unpickled optimizer,
    whose attributes torch does not keep, makes its own)."""
    if getattr(optimizer, "scratch", None) is None:
        optimizer.scratch = Scratch()
    return optimizer.scratch


def add_scaled_(t: Tensor, x: Tensor, scale: PerMember, sign: float = 1.0) -> Tensor:
    """t += sign·scale·x in place, `scale` one number or (K,), one per member: the product is
    never a tensor of its own (a stacked step at large K would allocate one per parameter)."""
    if torch.is_tensor(scale):
        return t.addcmul_(x, over_members(scale, t), value=sign)
    return t.add_(x, alpha=sign * scale)


def sgd(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    lr: PerMember,
    momentum: PerMember,
    dampening: PerMember,
    weight_decay: PerMember,
    nesterov: bool,
    maximize: bool,
    scratch: Scratch | None = None,
) -> None:
    """torch.optim.SGD's update. A missing buffer (None) is created from the gradient and written
    into `momentum_buffers`, for the caller to keep."""
    if torch.is_tensor(momentum):  # alone, a member with momentum 0 has no buffer: no dampening
        dampening = torch.where(momentum != 0, dampening, torch.zeros_like(momentum))
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        g = decayed(-g if maximize else g, p, weight_decay, scratch)
        if applies(momentum):
            buf = momentum_buffers[i]
            if buf is None:
                buf = momentum_buffers[i] = g.detach().clone()
            else:
                add_scaled_(buf.mul_(over_members(momentum, p)), g, 1 - dampening)
            g = add_scaled_(g.clone(), buf, momentum) if nesterov else buf
        add_scaled_(p, g, lr, -1.0)


def adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    amsgrad: bool,
    lr: PerMember,
    beta1: PerMember,
    beta2: PerMember,
    eps: PerMember,
    weight_decay: PerMember,
    decoupled_weight_decay: bool,
    maximize: bool,
    scratch: Scratch | None = None,
) -> None:
    """torch.optim.Adam's update, and AdamW's with decoupled_weight_decay=True.
    `max_exp_avg_sqs` is read only with amsgrad (empty otherwise)."""
    for i, (p, g, m, v, step) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, state_steps, strict=True)):
        g = -g if maximize else g
        step += 1
        if not decoupled_weight_decay:
            g = decayed(g, p, weight_decay, scratch)
        elif applies(weight_decay):  # AdamW
            p.mul_(1 - over_members(lr * weight_decay, p))
        b1, b2 = over_members(beta1, p), over_members(beta2, p)
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g * (1 - b2))
        t = step.item()
        step_size = over_members(lr / (1 - beta1**t), p)
        bias_correction2_sqrt = over_members((1 - beta2**t) ** 0.5, p)
        if amsgrad:
            v = torch.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
        denom = (v.sqrt() / bias_correction2_sqrt).add_(over_members(eps, p))
        p.sub_(m.div(denom).mul_(step_size))


def rmsprop(
    params: list[Tensor],
    grads: list[Tensor],
    square_avgs: list[Tensor],
    grad_avgs: list[Tensor],
    momentum_buffers: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: PerMember,
    alpha: PerMember,
    eps: PerMember,
    weight_decay: PerMember,
    momentum: PerMember,
    centered: bool,
    maximize: bool,
    scratch: Scratch | None = None,
) -> None:
    """torch.optim.RMSprop's update. `grad_avgs` is read only when centered, `momentum_buffers`
    only when `applies(momentum)` (each empty otherwise). A (K,) momentum is > 0 for some member:
    all have a buffer, scaled by 0 for the others."""
    for i, (p, g, square_avg, step) in enumerate(zip(params, grads, square_avgs, state_steps, strict=True)):
        step += 1
        g = decayed(-g if maximize else g, p, weight_decay, scratch)
        a = over_members(alpha, p)
        square_avg.mul_(a).addcmul_(g, g * (1 - a))
        if centered:
            grad_avg = grad_avgs[i].lerp_(g, 1 - a)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(over_members(eps, p))
        if applies(momentum):
            buf = momentum_buffers[i].mul_(over_members(momentum, p)).addcdiv_(g, avg)
            p.sub_(buf * over_members(lr, p))
        else:
            p.sub_(g.div(avg).mul_(over_members(lr, p)))


def adagrad(
    params: list[Tensor],
    grads: list[Tensor],
    state_sums: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: PerMember,
    weight_decay: PerMember,
    lr_decay: PerMember,
    eps: PerMember,
    maximize: bool,
    scratch: Scratch | None = None,
) -> None:
    """torch.optim.Adagrad's update (not the lecture's, dltips.optim.Adagrad)."""
    for p, g, state_sum, step in zip(params, grads, state_sums, state_steps, strict=True):
        step += 1
        t = step.item()
        g = decayed(-g if maximize else g, p, weight_decay, scratch)
        clr = over_members(lr / (1 + (t - 1) * lr_decay), p)
        std = state_sum.addcmul_(g, g).sqrt().add_(over_members(eps, p))
        p.sub_(g.div(std).mul_(clr))
