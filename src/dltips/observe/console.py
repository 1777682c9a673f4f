"""What a run prints while it trains: a progress bar on a terminal, or plain log lines (files,
CI, sweeps); train.log gets every line either way."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from dltips.early_stopping import EarlyStopping

log = logging.getLogger("dltips")


class Epochs:
    """The epochs to train, iterated by the loop: under a progress bar or not (`mode`: auto,
    bar, log)."""

    def __init__(self, epochs: range, mode: str):
        bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
        self.epochs = epochs
        self.bar = tqdm(epochs, desc="epoch", unit="epoch", leave=False) if bar else None

    def __iter__(self) -> Iterator[int]:
        return iter(self.bar if self.bar is not None else self.epochs)

    def show(self, **values: str) -> None:
        """Values next to the bar (the bar's postfix); nothing without a bar."""
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def line(self, message: str, *args, run_dir: Path | None = None) -> None:
        """An epoch's line: on the console and in train.log, or, under a progress bar (which
        shows it already), in train.log only. A line about one of several networks trained
        together (`run_dir`) goes to the log files only: a file handler may keep only its own
        run's lines (dltips.launch.stacked)."""
        if self.bar is None and run_dir is None:
            log.info(message, *args)
            return
        record = log.makeRecord(log.name, logging.INFO, __file__, 0, message, args, None, extra={"run_dir": run_dir})
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
                handler.handle(record)  # files, and handlers of files (dltips.launch.stacked.ByRun): no console


def announce(out: Path, environment: str, extra: dict | None = None) -> None:
    log.info("run directory: %s (%s; watch it: tensorboard --logdir %s)", out, environment, out, extra=extra)


def best_epoch_text(stopper: EarlyStopping) -> str:
    """The final line's account of the best epoch (by the early-stopping monitor)."""
    if stopper.best_epoch < 0:
        return "no epoch finished"
    values = ", ".join(f"{k} {v:.4f}" for k, v in stopper.best_metrics.items() if k.startswith("val/"))
    return f"best epoch {stopper.best_epoch} by {stopper.monitor}: {values}"
