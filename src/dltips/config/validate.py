"""Turning config nodes into objects, with one-line errors for bad values.

Constructors validate their own arguments (the torch.optim way); this module only builds them
through Hydra, unwraps Hydra's InstantiationException to the constructor's message, and checks
the few keys that belong to no constructor (device, trainer, seeds, batch size vs data size)
and optimizer.lr and momentum, which torch's own optimizers check loosely or not at all.
"""

from __future__ import annotations

import inspect
import math
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from dltips.checks import is_int, is_number
from dltips.config.errors import ConfigError
from dltips.config.resolvers import CONFIG_DIR  # importing it registers the resolvers configs/hydra/ calls
from dltips.optim.schedules import INTERVALS

DEVICES = ("auto", "cpu", "cuda")
SEEDS = "an integer from 0 to 4294967295"  # numpy's and scikit-learn's range; torch's is wider
PROGRESS = ("auto", "bar", "log")


@contextmanager
def config_errors(cfg: DictConfig | None = None):
    """Report what a constructor rejected as a ConfigError carrying the constructor's message
    (which names the key, the value and what is allowed), not as Hydra's wrapped traceback; an
    argument the constructor does not take is named by its key in `cfg`."""
    try:
        yield
    except ConfigError:
        raise
    except (MissingMandatoryValue, InstantiationException) as err:
        cause = (err.__cause__ or err) if isinstance(err, InstantiationException) else err
        if isinstance(cause, MissingMandatoryValue):  # `key=???`: OmegaConf's traceback, not what to do
            key = cause.full_key
            raise ConfigError(f"Invalid {key}: ??? (missing); allowed: a value, e.g. {key}=...") from err
        raise unexpected_argument(cfg, cause) or ConfigError(str(cause)) from err
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError) as err:
        raise unexpected_argument(cfg, err) or ConfigError(str(err)) from err


# Python's own words for a keyword argument a callable does not take: "MLP.__init__() got an
# unexpected keyword argument 'widht'".
UNEXPECTED = re.compile(r"([\w.]+)\(\) got an unexpected keyword argument '(\w+)'")


def unexpected_argument(cfg: DictConfig | None, err: BaseException) -> ConfigError | None:
    """`Invalid model.widht: 3; allowed: the arguments of dltips.nn.MLP: …` for the config node
    (one with a `_target_`) that handed the constructor the argument it does not take."""
    match = UNEXPECTED.search(str(err))
    if cfg is None or not isinstance(err, TypeError) or match is None:
        return None
    name, argument = match[1].split(".")[0], match[2]

    def nodes(node: dict, prefix: str):
        if "_target_" in node and str(node["_target_"]).rsplit(".", 1)[-1] == name and argument in node:
            yield prefix, node
        for key, child in node.items():
            if isinstance(child, dict):
                yield from nodes(child, f"{prefix}{key}.")

    found = next(nodes(OmegaConf.to_container(cfg, resolve=False), ""), None)
    if found is None:
        return None
    prefix, node = found
    from hydra.utils import get_object

    try:
        parameters = inspect.signature(get_object(node["_target_"])).parameters.values()
        takes = ", ".join(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)) or "none"
    except (ValueError, TypeError, ImportError):
        takes = "see its signature"
    value, target = node[argument], node["_target_"]
    return ConfigError(f"Invalid {prefix}{argument}: {value!r}; allowed: the arguments of {target}: {takes}")


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"Invalid {key}: {value!r}; allowed: {allowed}")


def compose_train(overrides: list[str], output_dir: Path | str | None = None, hydra: bool = False) -> DictConfig:
    """The config `dltips-train` would run with these overrides, for Python callers (scripts,
    notebooks, tests); `output_dir` stands in for Hydra's run directory. `hydra=True` keeps
    the `hydra` node (launcher, sweeper)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        # Quoted: run directories are named like "model.depth=4,seed=0", which the grammar would split.
        quoted = str(output_dir).replace("\\", "\\\\").replace("'", "\\'")
        extra = [f"output_dir='{quoted}'"] if output_dir is not None else []
        return compose(config_name="train", overrides=[*overrides, *extra], return_hydra_config=hydra)


def resolve_device(name: str) -> torch.device:
    check(name in DEVICES, "trainer.device", name, ", ".join(DEVICES))
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("Invalid trainer.device: 'cuda', but no CUDA GPU is available here; allowed: auto, cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_run(cfg: DictConfig) -> None:
    """Keys read by the loop itself rather than by a constructor."""
    for key in ("seed", "data.split_seed"):
        seed = OmegaConf.select(cfg, key)
        check(is_int(seed) and 0 <= seed < 2**32, key, seed, SEEDS)
    t = cfg.trainer
    check(is_int(t.max_epochs) and t.max_epochs >= 1, "trainer.max_epochs", t.max_epochs, "an integer >= 1")
    check(
        is_int(t.log_every_n_steps) and t.log_every_n_steps >= 1,
        "trainer.log_every_n_steps",
        t.log_every_n_steps,
        "an integer >= 1",
    )
    check(t.progress in PROGRESS, "trainer.progress", t.progress, ", ".join(PROGRESS))
    check(isinstance(t.tf32, bool), "trainer.tf32", t.tf32, "true or false")
    if not isinstance(t.compile, bool):
        backends = compile_backends()
        check(
            t.compile in backends,
            "trainer.compile",
            t.compile,
            "false, true (inductor) or a backend: " + ", ".join(backends),
        )
    n = t.checkpoint_every_n_epochs
    check(is_int(n) and n >= 1, "trainer.checkpoint_every_n_epochs", n, "an integer >= 1")
    check_seeds(cfg)
    check(cfg.scheduler.interval in INTERVALS, "scheduler.interval", cfg.scheduler.interval, ", ".join(INTERVALS))
    dropout = [OmegaConf.select(cfg, k, default=0) for k in ("model.dropout", "model.input_dropout")]
    check(
        not cfg.eval_subnetworks or any(isinstance(p, (int, float)) and p > 0 for p in dropout),
        "eval_subnetworks",
        cfg.eval_subnetworks,
        "true only with model.dropout > 0 or model.input_dropout > 0 (the sub-networks are dropout's)",
    )
    # Checked here for every optimizer: torch's own accept lr=0, momentum >= 1 and booleans,
    # and meet a string with a TypeError from inside a comparison.
    lr = OmegaConf.select(cfg, "optimizer.lr")
    check(is_number(lr) and math.isfinite(lr) and lr > 0, "optimizer.lr", lr, "a number > 0")
    if "momentum" in cfg.optimizer:
        m = cfg.optimizer.momentum
        check(is_number(m) and 0 <= m < 1, "optimizer.momentum", m, "0 <= momentum < 1")
    # The parameter groups (dltips.optim.param_groups) set each group's weight decay, which
    # overrides the optimizer's: a value here would be silently ignored.
    check(
        "weight_decay" not in cfg.optimizer,
        "optimizer.weight_decay",
        cfg.optimizer.get("weight_decay"),
        "no weight_decay under optimizer; set regularizer.weight_decay (it decays the weight matrices only)",
    )


def compile_backends() -> list[str]:
    import torch._dynamo  # only when asked for: importing it takes seconds

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


def check_seeds(cfg: DictConfig) -> None:
    """trainer.seeds: how many seeds of this config train at once (dltips.engine.seeds)."""
    k = cfg.trainer.seeds
    check(is_int(k) and k >= 1, "trainer.seeds", k, "an integer >= 1 (the number of seeds trained at once)")
    if is_int(cfg.seed) and 0 <= cfg.seed < 2**32:  # (a bad seed is reported by check_run)
        check(
            cfg.seed + k <= 2**32,
            "trainer.seeds",
            k,
            f"at most {2**32 - cfg.seed} with seed={cfg.seed} (the seeds are seed … seed+K−1)",
        )


# Old names a config may still use -> (the key that holds the value now, its default, which
# values it takes).
ALIASES = {
    "trainer.ensemble": ("trainer.seeds", 1, lambda v: is_int(v) and v >= 1),
    "ensemble_eval": ("eval_subnetworks", False, lambda v: isinstance(v, bool)),
}


def use_aliases(cfg: DictConfig) -> DictConfig:
    """The config with every old name's value moved to its new key (ALIASES)."""
    moved = None
    for old, (new, default, valid) in ALIASES.items():
        value = OmegaConf.select(cfg, old)
        if value is None:
            continue
        now = OmegaConf.select(cfg, new)
        check(
            valid(value) and now in (default, value),
            old,
            value,
            f"null, or {now} with {new}={now} (it is the old name of {new})",
        )
        if moved is None:
            moved = cfg.copy()
        OmegaConf.update(moved, new, value)
        OmegaConf.update(moved, old, None)
    return cfg if moved is None else moved


def check_batch_size(batch_size: Any, n_train: int) -> None:
    check(
        is_int(batch_size) and 1 <= batch_size <= n_train,
        "data.batch_size",
        batch_size,
        f"an integer from 1 to the {n_train} training samples",
    )


def check_added(cfg: DictConfig, overrides: list[str]) -> None:
    """`+key=value` adds a key Hydra's config does not have. Under a node built by a constructor
    (`_target_`: model, optimizer, data.source) the constructor takes or refuses it; anywhere
    else dltips reads keys by name, and an added one (`+trainer.max_epoch=3`, a typo) would be
    ignored without a word: it is refused, with the keys there are."""
    for item in overrides:
        if not item.startswith("+") or item.startswith("++"):
            continue
        key, _, value = item[1:].partition("=")
        parts = key.split(".")
        if parts[0] == "hydra":
            continue
        parents = [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
        nodes = [OmegaConf.select(cfg, p) for p in parents] + [cfg]
        if any(isinstance(node, DictConfig) and "_target_" in node for node in nodes[:-1]):
            continue
        parent = nodes[0]
        known = sorted(k for k in parent if k != parts[-1] and not str(k).startswith("_")) if parent is not None else []
        where = f"the keys of {parents[0]}" if parents else "the config's top-level keys"
        raise ConfigError(f"Invalid +{key}: {value!r}; allowed: {where}: {', '.join(known)} (no key to add here)")
