"""The networks one training loop trains: one run, or K members stacked into one module.

Members share what makes a step one computation — architecture, data set, batch size, loss,
optimizer class, device, the trainer's settings — and may differ in anything that leaves the
parameter shapes alone: seed, data split, optimizer numbers (lr, momentum, betas, …), weight
decay, dropout rates and modes, initialisation, schedule, early stopping, augmentation (STACKABLE). Each
member keeps its own run directory, random streams, early stopping and results, so member k
equals its config trained alone, to float tolerance. K = 1 is the plain network, not a stack
of one: a (B, F) forward is cheaper than a (1, B, F) one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from dltips.run import checkpoint
from dltips.engine.build import build_optimizer, compile_model, setup
from dltips.config.validate import ConfigError, config_errors
from dltips.data import Augment, Splits
from dltips.observe.diagnostics import GradientFlow
from dltips.early_stopping import EarlyStopping
from dltips.nn.stacked import stack, tie
from dltips.optim import Adagrad, Momentum
from dltips.optim.per_member import per_member
from dltips.run.resume import flatten

# Keys members trained together may differ in (fnmatch patterns over the flattened config).
STACKABLE = (
    "seed", "output_dir", "resume", "data.split_seed", "data.augment.*",
    "optimizer.*", "regularizer.weight_decay", "regularizer.early_stopping.*",
    "model.dropout", "model.input_dropout", "model.dropout_mode", "model.init", "model.bias_init",
    "scheduler.factor.*", "eval_subnetworks",
)  # fmt: skip
# ... except these, which change the computation's shape or kind.
SHARED = ("optimizer._target_", "optimizer._partial_", "scheduler.factor._target_", "scheduler.factor._partial_")

# Optimizers whose update of a weight reads only that weight's gradient and state: stacking
# members into one tensor changes nothing. (Adafactor's factored statistics or LBFGS would not.)
ELEMENTWISE = (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad, Adagrad, Momentum,
)  # fmt: skip


@dataclass(frozen=True)
class HydraContext:
    """What Hydra chose for a job: its config groups, command-line overrides and sweep plan."""

    choices: dict = field(default_factory=dict)
    overrides: list = field(default_factory=list)
    plan: object = None


@dataclass
class Member:
    """One network's own part of the training: where it writes and how far it got."""

    cfg: DictConfig
    context: HydraContext
    splits: Splits
    augment: Augment
    schedule: Callable[[int], float]
    stopper: EarlyStopping
    view: nn.Module  # the network as a plain module: the model itself, or its slice of the stack
    shuffle: torch.Generator  # batch order and augmentation
    dropout_rng: torch.Generator | None  # stacked: stands in for torch's default generator
    flow: GradientFlow | None = None
    writer: SummaryWriter | None = None
    status: str = "running"  # then completed | diverged (metrics.json's status)
    message: str = ""
    report: dict | None = None  # metrics.json, once finished
    final_state: dict | None = None  # its weights when it finished (a stack's slice trains on)
    recorded: dict | None = None  # resume.trained_with(cfg), the same in every checkpoint

    @property
    def out(self) -> Path:
        return Path(self.cfg.output_dir)


@dataclass
class Members:
    """What the loop trains: the model (one network or the stack), its optimizer, and each member."""

    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    members: list[Member]
    x: torch.Tensor  # training inputs: (N, F), or (K, N, F) when the members' splits differ
    y: torch.Tensor  # (N,) or (K, N)
    one_schedule: bool = True  # every member's schedule is the same: computed once per step
    started: float = 0.0  # time.perf_counter() when training began
    saver: checkpoint.Saver = field(default_factory=checkpoint.Saver)

    @property
    def stacked(self) -> bool:
        return len(self.members) > 1

    def running(self) -> list[int]:
        return [k for k, m in enumerate(self.members) if m.status == "running"]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels for batch indices (B,) or, stacked, (K, B): each member its own rows."""
        if self.x.dim() == 2:
            return self.x[idx], self.y[idx]
        rows = torch.arange(len(self.members), device=idx.device).unsqueeze(1)
        return self.x[rows, idx], self.y[rows, idx]

    def schedule(self, t: int) -> float | torch.Tensor:
        """The learning-rate factor at step or epoch t: one number, or one per member."""
        if self.one_schedule:
            return self.members[0].schedule(t)
        return torch.tensor([m.schedule(t) for m in self.members], device=self.device)


DROPOUT_RATES = ("model.dropout", "model.input_dropout")


def stack_key(cfg: DictConfig) -> str:
    """Configs with equal keys can train as members of one stack (their networks' shapes are
    checked again when built)."""
    values = flatten(OmegaConf.to_container(cfg, resolve=True))
    kept = {k: v for k, v in values.items() if k in SHARED or not any(fnmatch(k, p) for p in STACKABLE)}
    # Numbers may differ per member; switches (nesterov, amsgrad, …) and strings may not.
    kept |= {k: v for k, v in values.items() if k.startswith("optimizer.") and not is_plain_number(v)}
    # A dropout rate of 0 builds no dropout layer: the rates may differ, their being 0 may not.
    kept |= {f"{k} > 0": values[k] > 0 for k in DROPOUT_RATES if is_plain_number(values.get(k))}
    return repr(sorted(kept.items()))


def is_plain_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fork_generator(device: torch.device) -> torch.Generator:
    """A generator in the state the device's default generator is in now."""
    g = torch.Generator(device=device)
    g.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return g


def build_members(cfgs: list[DictConfig], contexts: list[HydraContext] | None = None) -> Members:
    """Everything the loop trains with, every value checked before anything is written."""
    contexts = contexts or [HydraContext()] * len(cfgs)
    if len(cfgs) == 1:
        s = setup(cfgs[0])
        member = Member(cfgs[0], contexts[0], s.splits, s.augment, s.schedule, s.stopper, s.model, shuffle(cfgs[0], s.device), None)
        return Members(s.device, s.model, s.optimizer, s.loss_fn, [member], *s.splits.train)
    keys = [stack_key(cfg) for cfg in cfgs]
    for cfg, key in zip(cfgs, keys):
        if key != keys[0]:
            raise ConfigError(f"Invalid member {cfg.output_dir!r}: it differs from {cfgs[0].output_dir!r} in more than {', '.join(STACKABLE)}; allowed: configs that train stacked")
    prepared: dict = {}
    setups, members, rngs = [], [], []
    for cfg, context in zip(cfgs, contexts):
        s = setup(cfg, prepared)  # every member's values checked; its network initialised as alone
        rngs.append(fork_generator(s.device))  # where member k alone would start drawing dropout masks
        setups.append(s)
        members.append(Member(cfg, context, s.splits, s.augment, s.schedule, s.stopper, s.model, shuffle(cfg, s.device), rngs[-1]))
    first = setups[0]
    for m in members[1:]:
        if shapes(m.view) != shapes(first.model):
            raise ConfigError(
                f"Invalid member {m.cfg.output_dir!r}: its network's layers differ from {cfgs[0].output_dir!r}'s "
                "(a dropout rate of 0 builds no dropout layer); allowed: networks of one shape"
            )
    with config_errors():
        model = compile_model(stack([s.model for s in setups], rngs), cfgs[0].trainer.compile)
        split = any(cfg.regularizer.weight_decay != 0 for cfg in cfgs)
        optimizer = build_optimizer(cfgs[0], model, split)
        if not isinstance(optimizer, ELEMENTWISE):
            raise ConfigError(
                f"Invalid optimizer._target_: {cfgs[0].optimizer._target_!r}; allowed for networks trained together: an "
                "element-wise optimizer (its update of one weight reads no other weight, so members stay apart): "
                + ", ".join(f"{t.__module__}.{t.__name__}" for t in ELEMENTWISE)
            )
        tie([s.model for s in setups], model)  # each member's network: a view of its slice
        own = [build_optimizer(cfg, m.view, split) for cfg, m in zip(cfgs, members)]
        # Schedules that differ make the learning rate a number per member even where the
        # configured rates are equal.
        schedules = {repr(OmegaConf.to_container(cfg.scheduler, resolve=True)) for cfg in cfgs}
        optimizer = per_member(optimizer, own, force=len(schedules) > 1)
    splits = [m.splits for m in members]
    if all(s is splits[0] for s in splits):
        x, y = first.splits.train
    else:  # each member its own split of the same data set
        x, y = torch.stack([s.train[0] for s in splits]), torch.stack([s.train[1] for s in splits])
    return Members(first.device, model, optimizer, first.loss_fn, members, x, y, one_schedule=len(schedules) == 1)


def shapes(model: nn.Module) -> list:
    return [(name, type(module).__name__, [tuple(p.shape) for p in module.parameters(recurse=False)]) for name, module in model.named_modules()]


def shuffle(cfg: DictConfig, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(cfg.seed)
