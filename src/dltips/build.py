"""Everything a run trains with, built from the config before anything is written: data,
augmentation, model, loss, optimizer, schedule, early stopping (train.py runs the loop)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from dltips.config import check_batch_size, check_run, config_errors, resolve_device
from dltips.data import Augment, Splits, prepare
from dltips.early_stopping import EarlyStopping
from dltips.optim import param_groups


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


def setup(cfg: DictConfig) -> Setup:
    with config_errors():
        check_run(cfg)
        device = resolve_device(cfg.trainer.device)
        torch.backends.cuda.matmul.allow_tf32 = cfg.trainer.tf32
        seed_everything(cfg.seed)
        d = cfg.data
        splits = prepare(
            instantiate(d.source),
            seed=d.split_seed,
            val_fraction=d.val_fraction,
            test_fraction=d.test_fraction,
            train_size=d.train_size,
            normalize=d.normalize,
            device=device,
        )
        check_batch_size(d.batch_size, len(splits.train[1]))
        augment = Augment(d.augment.rotate, d.augment.shift, splits.image_shape, splits.shift, splits.scale)
        model = compile_model(build_model(cfg, splits, device, cfg.seed), cfg.trainer.compile)
        optimizer = build_optimizer(cfg, model)
        schedule = instantiate(cfg.scheduler.factor)
        schedule(0)  # a partial checks its arguments only when called: here, not inside the loop
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


def build_optimizer(cfg: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    optimizer = instantiate(cfg.optimizer)(param_groups(model, cfg.regularizer.weight_decay))
    for group in optimizer.param_groups:  # schedules scale this; it is saved with the optimizer
        group.setdefault("initial_lr", group["lr"])
    return optimizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
