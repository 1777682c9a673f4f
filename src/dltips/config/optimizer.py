"""optimizer.*: the values a torch.optim.Optimizer class is built with, checked against its
constructor before it is called, and its own errors told with the config key."""

from __future__ import annotations

import inspect
from contextlib import contextmanager

import torch
from omegaconf import DictConfig, OmegaConf

from dltips.checks import is_number
from dltips.config.validate import check


def check_optimizer(optimizer: DictConfig, optimizer_class) -> None:
    """`optimizer._target_` is an optimizer whose step() needs no closure, and every other key
    is one of its constructor's arguments with a value of its default's kind: a number for a
    number, true or false for a switch, a list as long for a tuple (betas)."""
    target = optimizer._target_
    allowed = "a torch.optim.Optimizer class, such as torch.optim.SGD or dltips.optim.Adagrad"
    check(
        isinstance(optimizer_class, type) and issubclass(optimizer_class, torch.optim.Optimizer),
        "optimizer._target_",
        target,
        allowed,
    )
    check_step_without_closure(target, optimizer_class)
    parameters = inspect.signature(optimizer_class.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return  # it takes anything: its own checks are all there is
    arguments = [name for name in parameters if name not in ("self", "params")]
    for key, value in optimizer.items():
        if key in ("_target_", "_partial_"):
            continue
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        check(key in arguments, f"optimizer.{key}", value, f"the arguments of {target}: {', '.join(arguments)}")
        default = parameters[key].default
        if isinstance(default, bool):
            check(isinstance(value, bool), f"optimizer.{key}", value, "true or false")
        elif is_number(default):
            check(is_number(value), f"optimizer.{key}", value, "a number")
        elif isinstance(default, (tuple, list)):
            kind = f"a list of {len(default)} numbers, such as {list(default)}"
            ok = isinstance(value, (list, tuple)) and len(value) == len(default)
            # Each a number, or null where the default's is (Adafactor's eps: [null, 0.001]).
            ok = ok and all(is_number(v) or (v is None and d is None) for v, d in zip(value, default))
            check(ok, f"optimizer.{key}", value, kind)


def check_step_without_closure(target: str, optimizer_class: type) -> None:
    """The loop calls optimizer.step() once per batch, after its own backward pass; an optimizer
    that re-evaluates the loss itself (torch.optim.LBFGS) needs step(closure) and would fail at
    the first step, after the run directory is written."""
    step = getattr(optimizer_class, "step", None)
    if step is None:
        return
    try:
        inspect.signature(step).bind(None)  # None for self: does step() need anything more?
        steps_alone = True
    except TypeError:
        steps_alone = False
    check(
        steps_alone,
        "optimizer._target_",
        target,
        "an optimizer whose step() works without a closure (the loop calls step() after its own backward)",
    )


# torch.optim's own checks name the argument, not the config key, and leave out what is allowed
# (`Invalid beta parameter at index 0: 2`): how each message starts -> (key under optimizer,
# what is allowed). optimizer.weight_decay is rejected before (check_run): no entry for it.
TORCH_OPTIMIZER_ERRORS = {
    "Invalid learning rate": ("lr", "a number > 0"),
    "Learning rate should be": ("lr", "a number > 0"),
    "Invalid epsilon value": ("eps", "a number >= 0"),
    "epsilon1 should be": ("eps", "[null or a number >= 0, a number >= 0]"),
    "epsilon2 should be": ("eps", "[null or a number >= 0, a number >= 0]"),
    "Invalid beta parameter": ("betas", "two numbers in [0, 1), such as [0.9, 0.999]"),
    "Invalid momentum value": ("momentum", "0 <= momentum < 1"),
    "momentum should be": ("momentum", "0 <= momentum < 1"),
    "Invalid alpha value": ("alpha", "a number >= 0"),
    "Invalid lr_decay value": ("lr_decay", "a number >= 0"),
    "Invalid initial_accumulator_value value": ("initial_accumulator_value", "a number >= 0"),
    "Invalid rho value": ("rho", "0 <= rho <= 1"),
    "Invalid lambd value": ("lambd", "a number >= 0"),
    "Invalid momentum_decay value": ("momentum_decay", "a number >= 0"),
    "Invalid eta values": ("etas", "[eta_minus, eta_plus] with 0 < eta_minus < 1 < eta_plus"),
    "Nesterov momentum requires": ("nesterov", "true only with momentum > 0 and dampening = 0"),
    "beta2_decay should be": ("beta2_decay", "a number <= 0"),
    "Clipping threshold d": ("d", "a number >= 1"),
}


@contextmanager
def optimizer_errors(optimizer: DictConfig):
    """The optimizer constructor's ValueError as `Invalid optimizer.<key>: <value>; allowed: …`
    where its message is one of TORCH_OPTIMIZER_ERRORS; any other as it is."""
    try:
        yield
    except ValueError as err:
        message = str(err)
        for start, (key, allowed) in TORCH_OPTIMIZER_ERRORS.items():
            if message.startswith(start) and key in optimizer:
                value = optimizer[key]
                value = (
                    OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
                )  # [2, 0.9], not ListConfig
                check(False, f"optimizer.{key}", value, allowed)
        raise
