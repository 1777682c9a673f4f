"""Continuing a run: `resume=<run dir>` with the run's own config, from its last.pt, in its own
directory, to exactly the weights and metrics of a run never stopped (on CPU).

A checkpoint is written at the end of an epoch, or in the middle of one when the run is
interrupted (Ctrl-C, SIGTERM): then it also holds the epoch's batch order and how many of its
batches were trained, and the resumed run trains the rest of that epoch first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from dltips.config.errors import ConfigError
from dltips.config.keys import WHERE, flatten
from dltips.config.resolvers import run_dir as run_dir_of
from dltips.config.validate import CONFIG_DIR, compose_train
from dltips.config.yaml_files import to_yaml
from dltips.run import checkpoint

# What may change when a run is continued: how long it trains, and how progress is shown.
RESUME_OVERRIDES = ("resume", "trainer.max_epochs", "trainer.progress")
# Keys that change what a run writes or how fast, not the weights it trains: a checkpoint may be
# continued with other values of these (and only of these).
# (trainer.seeds: a member's own config always says 1; trainer.ensemble is its old name.)
OUTPUT_ONLY = tuple(
    f"trainer.{key}"
    for key in (
        "max_epochs",
        "progress",
        "checkpoint_every_n_epochs",
        "log_every_n_steps",
        "weight_histograms",
        "threads",
        "seeds",
        "ensemble",
    )
) + ("eval_subnetworks", "ensemble_eval")  # what is scored at the end (ensemble_eval: its old name)


@dataclass
class Position:
    """Where a run goes on: the epoch, the optimizer steps taken, and inside an interrupted
    epoch its batch order and the batches already trained (else None and 0)."""

    epoch: int = 0
    step: int = 0
    order: torch.Tensor | None = None
    batch: int = 0


def changed_keys(cfg: DictConfig, overrides: list[str] | None) -> dict[str, object]:
    """What the caller asked to change next to `resume`: the command line's overrides, or for
    Python callers (no command line) every key whose value differs from the defaults."""
    if overrides is not None:
        pairs = [item.lstrip("+~").partition("=") for item in overrides]
        return {key: value for key, _, value in pairs if not key.startswith("hydra")}
    defaults = OmegaConf.to_container(compose_train([f"resume='{cfg.resume}'"], cfg.output_dir), resolve=True)
    given = OmegaConf.to_container(cfg, resolve=True)
    return {key: value for key, value in flatten(given).items() if flatten(defaults).get(key) != value}


def resume_config(cfg: DictConfig, overrides: list[str] | None = None) -> DictConfig:
    """`resume=<run dir>`: that run's saved config, in its directory. Only trainer.max_epochs
    (to train a run longer) and trainer.progress may be given with it; anything else is an
    error, since the saved config, not the given one, is what the checkpoint was trained with."""
    if not cfg.get("resume"):
        return cfg
    run_dir = Path(cfg.resume)
    run_dir_of(str(run_dir), "")  # refused unless a run wrote it
    changed = changed_keys(cfg, overrides)
    for key, value in changed.items():
        if key not in (*RESUME_OVERRIDES, *WHERE):
            raise ConfigError(
                f"Invalid {key}: {value!r} with resume; allowed with resume: only trainer.max_epochs (train longer) "
                f"and trainer.progress: a run continues with its own config ({run_dir / 'config.yaml'})"
            )
    saved = OmegaConf.load(run_dir / "config.yaml")  # a run's config: checked by run_dir_of
    # A run saved before a trainer key existed resumes with that key's default.
    saved.trainer = OmegaConf.merge(OmegaConf.load(Path(CONFIG_DIR) / "trainer" / "default.yaml"), saved.trainer)
    if "trainer.max_epochs" in changed:
        saved.trainer.max_epochs = cfg.trainer.max_epochs
    saved.trainer.progress = cfg.trainer.progress
    saved.output_dir, saved.resume = str(run_dir), str(run_dir)
    return saved


def write_config(cfg: DictConfig, out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")  # OmegaConf.save's text
    except OSError as err:
        raise ConfigError(
            f"Invalid output_dir: {str(out)!r} cannot be written ({err.strerror}); allowed: a writable directory"
        ) from err


def trained_with(cfg: DictConfig) -> dict:
    """The config a checkpoint records: what it trained with, for checking a resume against."""
    config = flatten(OmegaConf.to_container(cfg, resolve=True))
    return {k: v for k, v in config.items() if k not in (*WHERE, *OUTPUT_ONLY)}


def check_same_run(cfg: DictConfig, state: dict, path: Path) -> None:
    """config.yaml edited after the run (an optimizer swapped, a layer widened) would load the
    checkpoint into another run: name the first key that differs."""
    recorded = state.get("config")
    if recorded is None:  # written before checkpoints recorded their config
        return
    now = trained_with(cfg)
    recorded = {k: v for k, v in recorded.items() if k not in (*WHERE, *OUTPUT_ONLY)}  # as older versions' lists were
    for key in sorted(set(recorded) | set(now)):
        if recorded.get(key) != now.get(key):
            raise ConfigError(
                f"Invalid {key}: {now.get(key)!r} in {Path(cfg.output_dir) / 'config.yaml'}; allowed: "
                f"{recorded.get(key)!r}, what {path} was trained with"
            )


def drop_newer_best(best: Path, first_epoch: int) -> None:
    """With last.pt every N epochs, best.pt can come from an epoch after it, which the resumed
    run trains again: that best.pt belongs to the killed run's future, not to this one."""
    if best.is_file() and checkpoint.load(best)["epoch"] >= first_epoch:
        best.unlink()


def after_last_event_file(run_dir: Path) -> None:
    """TensorBoard reads a run's event files in name order, and names start with the creation
    second: a resumed run's file must not share its second with the file of the run it
    continues, or its purge of the killed run's last steps is read before them."""
    newest = max((int(p.name.split(".")[3]) for p in run_dir.glob("events.out.tfevents.*")), default=0)
    while int(time.time()) <= newest:
        time.sleep(0.05)
