"""Which configs may train as members of one stack (dltips.engine.members.Stack), read from the
config alone: no torch, so that a process that only submits a sweep (dltips.launch.slurm) can
group its points.

Members share what makes a step one computation — architecture, data set, batch size, loss,
optimizer class, device, the trainer's settings — and may differ in anything that leaves the
parameter shapes alone: seed, data split, optimizer numbers (lr, momentum, betas, …), weight
decay, dropout rates and modes, initialisation, schedule, early stopping, augmentation.
"""

from __future__ import annotations

from fnmatch import fnmatch
from functools import lru_cache

from omegaconf import DictConfig, OmegaConf

from dltips.config.keys import flatten

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


def stack_key(cfg: DictConfig) -> str:
    """Configs with equal keys can train as members of one stack (their networks' shapes are
    checked again when built)."""
    values = flatten(OmegaConf.to_container(cfg, resolve=True))
    kept = {k: v for k, v in values.items() if shared(k)}
    # Numbers may differ per member; switches (nesterov, amsgrad, …) and strings may not.
    kept |= {k: v for k, v in values.items() if k.startswith("optimizer.") and not is_plain_number(v)}
    # A dropout rate of 0 builds no dropout layer: the rates may differ, their being 0 may not.
    kept |= {f"{k} > 0": values[k] > 0 for k in DROPOUT_RATES if is_plain_number(values.get(k))}
    return repr(sorted(kept.items()))


@lru_cache(maxsize=4096)
def shared(key: str) -> bool:
    """Whether members of a stack must agree on the key (asked for every key of every job)."""
    return key in SHARED or not any(fnmatch(key, p) for p in STACKABLE)


def is_plain_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def in_stacks(keys: list[str], max_members: int) -> list[list[int]]:
    """The positions of the jobs whose keys are equal, in sweep order, at most max_members per
    stack; a job whose key is "" trains alone."""
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key or f"alone {i}", []).append(i)
    return [group[j : j + max_members] for group in groups.values() for j in range(0, len(group), max_members)]


def check_max_members(value, key: str) -> int:
    """A launcher's max_members: an integer >= 1, or the one-line error naming its key."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Invalid {key}: {value!r}; allowed: an integer >= 1")
    return value
