"""One job of `dltips-train` (dltips.cli): a single run, or one point of a sweep.

A bad config is one line, and leaves no run directory; in a sweep, a finished job is skipped, a
job an earlier attempt left unfinished goes on from its last.pt, a failing job is recorded in
its directory (error.txt, metrics.json) and the sweep goes on (see dltips.sweep); a signal
stops it with 130 or 143.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dltips import checkpoint
from dltips.config import ConfigError
from dltips.interrupt import Interrupted
from dltips.rundir import attempt_to_redo
from dltips.sweep import record_failure, share_cores
from dltips.train import train

log = logging.getLogger("dltips")


def run(cfg: DictConfig) -> float:
    """Run the job; returns its val/acc (the objective of Hydra's Optuna sweeper)."""
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    share_cores(HydraConfig.get().launcher)
    finished = Path(cfg.output_dir) / "metrics.json"
    if in_sweep and finished.is_file():  # a sweep re-run in its own directory skips finished jobs
        report = json.loads(finished.read_text())
        if report.get("status") in ("completed", "diverged"):
            log.info("already %s, skipped: %s", report["status"], finished.parent)
            value = report["metrics"].get("val/acc")
            return float("nan") if value is None else value
    if in_sweep and attempt_to_redo(finished.parent) == "resume":  # killed, interrupted or failed before
        log.info("resuming the earlier attempt of this job from its last.pt: %s", finished.parent)
        cfg = OmegaConf.merge(cfg, {"resume": str(finished.parent)})
    try:
        return train(cfg)["val/acc"]
    except Interrupted as err:
        log.warning("interrupted by %s", err.message)
        raise SystemExit(err.exit_code) from None
    except (ConfigError, checkpoint.CheckpointError) as err:
        log.error("%s: %s", "config error" if isinstance(err, ConfigError) else "checkpoint error", err)
        if not in_sweep:
            remove_if_only_hydras(Path(HydraConfig.get().runtime.output_dir))
            raise SystemExit(2) from None
        record_failure(Path(HydraConfig.get().runtime.output_dir), err)
    except Exception as err:
        if not in_sweep:
            raise
        log.exception("job failed")
        record_failure(Path(HydraConfig.get().runtime.output_dir), err)
    return float("nan")


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
