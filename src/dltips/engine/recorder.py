"""What a run writes about itself besides its weights: config.yaml, the epoch and end scalars,
checkpoints (through checkpoint.Saver), and its console and train.log lines."""
from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from dltips.run import checkpoint
from dltips.config.errors import ConfigError
from dltips.early_stopping import EarlyStopping
from dltips.observe.writer import log_scalars
from dltips.observe.tags import END, EPOCH, LR, TRAIN_LOSS, TRAIN_LOSS_EPOCH, WEIGHTS, per_layer

log = logging.getLogger("dltips")


def progress(epochs: range, mode: str):
    """A progress bar on a terminal, plain log lines otherwise (files, CI, sweeps)."""
    bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
    return tqdm(epochs, desc="epoch", unit="epoch", leave=False) if bar else epochs


def write_config(cfg: DictConfig, out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, out / "config.yaml")
    except OSError as err:
        raise ConfigError(f"Invalid output_dir: {str(out)!r} cannot be written ({err.strerror}); allowed: a writable directory") from err


def best_epoch_text(stopper: EarlyStopping) -> str:
    """The final line's account of the best epoch (by the early-stopping monitor)."""
    if stopper.best_epoch < 0:
        return "no epoch finished"
    values = ", ".join(f"{k} {v:.4f}" for k, v in stopper.best_metrics.items() if k.startswith("val/"))
    return f"best epoch {stopper.best_epoch} by {stopper.monitor}: {values}"


def announce(out: Path, extra: dict | None = None) -> None:
    log.info("run directory: %s (watch it: tensorboard --logdir %s)", out, out, extra=extra)


def log_to_file(epochs, message: str, *args, run_dir: Path | None = None) -> None:
    """An epoch's line: on the console and in train.log, or, under a progress bar (which shows
    it already), in train.log only, so that the log holds every epoch either way. A line about
    one of several networks trained together (`run_dir`) goes to the log files only: a file
    handler may keep only its own run's lines (dltips.launch.stacked)."""
    if not isinstance(epochs, tqdm) and run_dir is None:
        log.info(message, *args)
        return
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, message, args, None, extra={"run_dir": run_dir})
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


# Metrics measured on a split. A diverged run's come from NaN weights (every argmax the same
# class: accuracy 0.1 on digits): they are not results, so they are NaN (null in metrics.json).
SPLIT_METRICS = ("train/", "val/", "test/")


def without_results(final: dict[str, float]) -> dict[str, float]:
    """A diverged run's final metrics: where it stopped, and its split metrics missing."""
    return {k: math.nan if k.startswith(SPLIT_METRICS) else v for k, v in final.items()}


def write_checkpoints(run_dir: Path, state: Callable[[], dict], writer: SummaryWriter, saver: checkpoint.Saver, last: bool, best: bool) -> None:
    """last.pt when due, best.pt when the monitored metric improved (a link to last.pt if both),
    written by the saver's thread while training goes on."""
    if not (last or best):
        return
    writer.flush()  # every point up to the checkpoint is on disk before it is
    snapshot = checkpoint.detached(state())
    if last:
        saver.submit(checkpoint.save, run_dir / "last.pt", snapshot)
    if best and last:
        saver.submit(checkpoint.copy, run_dir / "last.pt", run_dir / "best.pt")
    elif best:
        saver.submit(checkpoint.save, run_dir / "best.pt", snapshot)


def ends(epoch: int, step: int, stopper: EarlyStopping) -> dict[str, float]:
    """Where a run stopped, for metrics.json."""
    return {"epochs": epoch + 1, "steps": step, "stop_epoch": epoch, "best_epoch": stopper.best_epoch}


def due(epoch: int, trainer: DictConfig) -> bool:
    """Whether last.pt is written after this epoch: every N epochs and after the last one."""
    return (epoch + 1) % trainer.checkpoint_every_n_epochs == 0 or epoch == trainer.max_epochs - 1


def log_epoch(writer, metrics: dict, epoch: int, step: int, lr: float, model: nn.Module, histograms: bool) -> None:
    # train/loss itself is the mini-batch curve
    values = {TRAIN_LOSS_EPOCH if tag == TRAIN_LOSS else tag: value for tag, value in metrics.items()}
    log_scalars(writer, values | {LR: lr, EPOCH: epoch}, step)
    if histograms:
        for i, layer in enumerate(model.linears(), start=1):
            writer.add_histogram(per_layer(WEIGHTS, i), layer.weight, step)


def log_end(writer, final: dict[str, float], step: int, status: str) -> None:
    """The end-of-run numbers, under their own tags (dltips.observe.tags.END). A diverged run's test
    metrics are left out: they are those of NaN weights (accuracy 0.1 from argmax), not a result."""
    shown = END if status == "completed" else {k: v for k, v in END.items() if not k.startswith("test/")}
    log_scalars(writer, {tag: final[name] for name, tag in shown.items()}, step)
