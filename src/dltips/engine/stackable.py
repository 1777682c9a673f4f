"""Which configs may train as members of one stack (dltips.engine.members.Stack).

Members share what makes a step one computation — architecture, data set, batch size, loss,
optimizer class, device, the trainer's settings — and may differ in anything that leaves the
parameter shapes alone: seed, data split, optimizer numbers (lr, momentum, betas, …), weight
decay, dropout rates and modes, initialisation, schedule, early stopping, augmentation.
"""

from __future__ import annotations

from fnmatch import fnmatch

import torch
from omegaconf import DictConfig, OmegaConf

from dltips.config.keys import flatten
from dltips.optim import Adagrad, Momentum

# Keys members trained together may differ in (fnmatch patterns over the flattened config).
STACKABLE = (
    "seed",
    "output_dir",
    "resume",
    "data.split_seed",
    "data.augment.*",
    "optimizer.*",
    "regularizer.weight_decay",
    "regularizer.early_stopping.*",
    "model.dropout",
    "model.input_dropout",
    "model.dropout_mode",
    "model.init",
    "model.bias_init",
    "scheduler.factor.*",
    "eval_subnetworks",
)
# ... except these, which change the computation's shape or kind.
SHARED = ("optimizer._target_", "optimizer._partial_", "scheduler.factor._target_", "scheduler.factor._partial_")
DROPOUT_RATES = ("model.dropout", "model.input_dropout")

# Optimizers whose update of a weight reads only that weight's gradient and state: stacking
# members into one tensor changes nothing. (Adafactor's factored statistics or LBFGS would not.)
ELEMENTWISE = (
    torch.optim.SGD,
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.RMSprop,
    torch.optim.Adagrad,
    Adagrad,
    Momentum,
)


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
