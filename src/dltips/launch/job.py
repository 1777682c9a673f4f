"""One job of `dltips-train` (dltips.launch.cli): a single run, or one point of a sweep.

A bad config is one line, and leaves no run directory; in a sweep, a finished job is skipped, a
job an earlier attempt left unfinished (killed, interrupted, requeued by SLURM) goes on from its
last.pt, a failing job is recorded in its directory (error.txt, metrics.json) and the sweep goes
on (see dltips.launch.sweep); a signal stops it with 130 or 143, and in a SLURM job the one before the
time limit requeues it (dltips.run.interrupt.hand_on).
"""
from __future__ import annotations

import logging
import shutil
import signal
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from dltips.run import checkpoint
from dltips.config.errors import ConfigError
from dltips.run.interrupt import Interrupted, hand_on
from dltips.run.rundir import finished_value, redo
from dltips.launch.sweep import log_failure, record_failure, share_cores
from dltips.train import train

log = logging.getLogger("dltips")


def run(cfg: DictConfig) -> float:
    """Run the job; returns its val/acc (the objective of Hydra's Optuna sweeper)."""
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    share_cores(HydraConfig.get().launcher)
    if in_sweep:  # a sweep re-run in its own directory: finished jobs skipped, the others go on
        value = finished_value(cfg)
        if value is not None:
            return value
        cfg = redo(cfg)
    try:
        return train(cfg)["val/acc"]
    except Interrupted as err:
        log.warning("interrupted by %s", err.message)
        try:
            hand_on(err.signum)  # in a SLURM job: requeued, to go on from last.pt
        except Exception as refused:  # noqa: BLE001 (submitit's reason not to requeue)
            log.warning("not requeued: %s; re-running the sweep into its directory continues it", refused)
        raise SystemExit(err.exit_code) from None
    except (ConfigError, checkpoint.CheckpointError) as err:
        log_failure(err)
        if not in_sweep:
            remove_if_only_hydras(Path(HydraConfig.get().runtime.output_dir))
            raise SystemExit(2) from None
        record_failure(Path(HydraConfig.get().runtime.output_dir), err)
    except Exception as err:
        if not in_sweep:
            raise
        if not_requeued(err):  # SLURM's time limit outside the loop: last.pt is as the last epoch left it
            log.warning("stopped before the time limit and not requeued: %s", err)
            raise SystemExit(128 + signal.SIGUSR2) from None
        log_failure(err)
        record_failure(Path(HydraConfig.get().runtime.output_dir), err)
    return float("nan")


def not_requeued(err: Exception) -> bool:
    """submitit's refusal to requeue a job at its time limit (too many times already)."""
    submitit = sys.modules.get("submitit")
    return submitit is not None and type(err) is submitit.core.utils.UncompletedJobError


def remove_if_only_hydras(run_dir: Path) -> None:
    """Hydra opens a run's directory (.hydra/ and train.log) before the config is checked: a
    rejected command leaves nothing behind. A directory holding anything else is left alone."""
    if not run_dir.is_dir() or {p.name for p in run_dir.iterdir()} - {".hydra", "train.log"}:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):  # Hydra's file handler has train.log open
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir.resolve():
            root.removeHandler(handler)
            handler.close()
    shutil.rmtree(run_dir, ignore_errors=True)
