"""Everything a run trains with, built from the config before anything is written: data,
augmentation, model, loss, optimizer, schedule, early stopping (dltips.engine.loop runs them)."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dltips.config.errors import ConfigError
from dltips.config.optimizer import check_optimizer, optimizer_errors
from dltips.config.stackable import STACKABLE, stack_key
from dltips.config.validate import check_batch_size, check_run, config_errors, resolve_device
from dltips.data import Augment, Dataset, Splits, prepare
from dltips.early_stopping import EarlyStopping
from dltips.engine.members import HydraContext, Member, One, Stack
from dltips.engine.stackable import ELEMENTWISE
from dltips.nn.stacked import stack, tie
from dltips.optim import param_groups
from dltips.optim.per_member import per_member

# What the splits depend on (batch size and augmentation do not).
SPLIT_KEYS = ("source", "split_seed", "val_fraction", "test_fraction", "train_size", "normalize")


@dataclass
class Setup:
    """Everything a run trains with, built from the config before anything is written."""

    device: torch.device
    splits: Splits
    augment: Augment
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Callable[[int], float]
    stopper: EarlyStopping


def setup(cfg: DictConfig, prepared: dict | None = None, split: bool | None = None) -> Setup:
    """Build one run from its config. `prepared` keeps the data sets and splits made so far by
    their data config, for networks trained together on the same data (dltips.engine.members);
    `split`: the optimizer's param groups as networks trained together share them
    (dltips.optim.param_groups)."""
    with config_errors(cfg):
        check_run(cfg)
        device = resolve_device(cfg.trainer.device)
        torch.backends.cuda.matmul.allow_tf32 = cfg.trainer.tf32
        seed_everything(cfg.seed)
        d = cfg.data
        data = OmegaConf.to_container(d, resolve=True)
        key = repr([data[k] for k in SPLIT_KEYS])
        splits = (prepared or {}).get(key) or prepare(
            load_source(d.source, prepared),
            seed=d.split_seed,
            val_fraction=d.val_fraction,
            test_fraction=d.test_fraction,
            train_size=d.train_size,
            normalize=d.normalize,
            device=device,
        )
        if prepared is not None:
            prepared[key] = splits
        check_batch_size(d.batch_size, len(splits.train[1]))
        augment = Augment(d.augment.rotate, d.augment.shift, splits.image_shape, splits.shift, splits.scale)
        model = compile_model(build_model(cfg, splits, device, cfg.seed), cfg.trainer.compile)
        optimizer = build_optimizer(cfg, model, split)
        schedule = instantiate(cfg.scheduler.factor)
        schedule(0)  # a partial checks its arguments only when called: here, not inside the loop
        # Hydra's partial re-authorizes its target on every call (80 µs, a fifth of a small
        # step with scheduler.interval=step); the target was authorized once, the result is a number.
        schedule = functools.partial(schedule.func, *schedule.args, **schedule.keywords)
        return Setup(
            device=device,
            splits=splits,
            augment=augment,
            model=model,
            loss_fn=instantiate(cfg.loss),
            optimizer=optimizer,
            schedule=schedule,
            stopper=instantiate(cfg.regularizer.early_stopping),
        )


def load_source(source: DictConfig, loaded: dict | None) -> Dataset:
    """The data set the source config loads; `loaded`: those loaded so far by networks trained
    together, which share one (K seeds split it K ways, but read or generate it once). A source is a
    function of its config (every bundled one: generated sets take their own random_state or
    seed), and prepare() only reads it."""
    key = "source " + repr(OmegaConf.to_container(source, resolve=True))
    if loaded is not None and key in loaded:
        return loaded[key]
    dataset = instantiate(source)
    if loaded is not None:
        loaded[key] = dataset
    return dataset


def build_model(cfg: DictConfig, splits: Splits, device: torch.device, seed: int) -> nn.Module:
    # Seeded here, not only by seed_everything: the initialisation (and the dropout masks drawn
    # after it) depend on the seed alone, not on whatever the data source drew before.
    torch.manual_seed(seed)
    return instantiate(cfg.model, in_features=splits.num_features, out_features=splits.num_classes).to(device)


def compile_model(model: nn.Module, backend: bool | str) -> nn.Module:
    """torch.compile in place (`Module.compile`): the state_dict keys stay the model's own, so
    checkpoints load into a model compiled or not. Compilation happens at the first forward."""
    if backend:
        model.compile(backend="inductor" if backend is True else backend)
    return model


def build_optimizer(cfg: DictConfig, model: nn.Module, split: bool | None = None) -> torch.optim.Optimizer:
    """The configured optimizer over the model's parameter groups (`split`: dltips.optim.param_groups)."""
    factory = instantiate(cfg.optimizer)
    check_optimizer(cfg.optimizer, getattr(factory, "func", factory))
    groups = param_groups(model, cfg.regularizer.weight_decay, split)
    with optimizer_errors(cfg.optimizer):
        optimizer = factory(groups)
    for group in optimizer.param_groups:  # schedules scale this; it is saved with the optimizer
        group.setdefault("initial_lr", group["lr"])
    return optimizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fork_generator(device: torch.device) -> torch.Generator:
    """A generator in the state the device's default generator is in now."""
    g = torch.Generator(device=device)
    g.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return g


def build_networks(cfgs: list[DictConfig], contexts: list[HydraContext] | None = None) -> One | Stack:
    """Everything the loop trains with, every value checked before anything is written: one
    network for one config, a stack for several (the only place that tells them apart)."""
    contexts = contexts or [HydraContext()] * len(cfgs)
    if len(cfgs) == 1:
        s = setup(cfgs[0])
        member = Member(
            cfgs[0], contexts[0], s.splits, s.augment, s.schedule, s.stopper, s.model, shuffle(cfgs[0], s.device), None
        )
        return One(s.device, s.model, s.optimizer, s.loss_fn, [member], *s.splits.train)
    keys = [stack_key(cfg) for cfg in cfgs]
    for cfg, key in zip(cfgs, keys):
        if key != keys[0]:
            raise ConfigError(
                f"Invalid member {cfg.output_dir!r}: it differs from {cfgs[0].output_dir!r} in more than "
                f"{', '.join(STACKABLE)}; allowed: configs that train stacked"
            )
    prepared: dict = {}
    setups, members, rngs = [], [], []
    with config_errors():
        split = any(cfg.regularizer.weight_decay != 0 for cfg in cfgs)  # one set of param groups for all
    for cfg, context in zip(cfgs, contexts):
        # Every member's values checked; its network initialised, and its optimizer built, as alone.
        s = setup(cfg, prepared, split)
        rngs.append(fork_generator(s.device))  # where member k alone would start drawing dropout masks
        setups.append(s)
        members.append(
            Member(cfg, context, s.splits, s.augment, s.schedule, s.stopper, s.model, shuffle(cfg, s.device), rngs[-1])
        )
    first = setups[0]
    for m in members[1:]:
        if shapes(m.view) != shapes(first.model):
            raise ConfigError(
                f"Invalid member {m.cfg.output_dir!r}: its network's layers differ from {cfgs[0].output_dir!r}'s "
                "(a dropout rate of 0 builds no dropout layer); allowed: networks of one shape"
            )
    with config_errors():
        model = compile_model(stack([s.model for s in setups], rngs), cfgs[0].trainer.compile)
        optimizer = build_optimizer(cfgs[0], model, split)
        if not isinstance(optimizer, ELEMENTWISE):
            raise ConfigError(
                f"Invalid optimizer._target_: {cfgs[0].optimizer._target_!r}; "
                "allowed for networks trained together: an "
                "element-wise optimizer (its update of one weight reads no other weight, so members stay apart): "
                + ", ".join(f"{t.__module__}.{t.__name__}" for t in ELEMENTWISE)
            )
        tie([s.model for s in setups], model)  # each member's network: a view of its slice
        # Schedules that differ make the learning rate a number per member even where the
        # configured rates are equal. The members' own optimizers (over their networks as built,
        # before tie) give their settings, initial state and shapes: no parameter value is read.
        schedules = {repr(OmegaConf.to_container(cfg.scheduler, resolve=True)) for cfg in cfgs}
        optimizer = per_member(optimizer, [s.optimizer for s in setups], force=len(schedules) > 1)
    splits = [m.splits for m in members]
    if all(s is splits[0] for s in splits):
        x, y = first.splits.train
    else:  # each member its own split of the same data set
        x, y = torch.stack([s.train[0] for s in splits]), torch.stack([s.train[1] for s in splits])
    networks = Stack(first.device, model, optimizer, first.loss_fn, members, x, y)
    networks.one_schedule = len(schedules) == 1
    return networks


def shapes(model: nn.Module) -> list:
    return [
        (name, type(module).__name__, [tuple(p.shape) for p in module.parameters(recurse=False)])
        for name, module in model.named_modules()
    ]


def shuffle(cfg: DictConfig, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(cfg.seed)
