"""Sweeps: jobs that share the machine's cores, a failing job recorded in its own directory,
and what a finished multirun leaves behind: summary.csv and summary.md in the sweep directory
(curves.png and gradient_flow.png too with `hydra.callbacks.summary.figures=true`: matplotlib
costs a sweep about two seconds more at its end), each setting's mean over its seeds as a
TensorBoard run of its own (~mean/), and a non-zero exit naming every job that failed or did not
finish (interrupted, cancelled by SLURM: re-running the sweep into its directory continues those)."""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path
from typing import Any

import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dltips.config.plan import Plan
from dltips.observe.hparams import defining_keys
from dltips.run import report

log = logging.getLogger("dltips")
# Sweepers that run each point once, in a grid (their jobs need no number); others (Optuna) search.
GRID_SWEEPERS = ("BasicSweeper", "GridSweeper")


class SweepSummary(Callback):
    def __init__(self, figures: bool = False) -> None:
        self.figures = bool(figures)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before any job: the sweep's plan (what it varies, which names its jobs, which keys
        define its experiment), saved where every job reads it."""
        hydra = config.hydra
        sweep_dir = Path(hydra.sweep.dir)
        plan = Plan.of(
            list(hydra.overrides.task),
            dict(hydra.sweeper.get("params") or {}),
            excluded=list(hydra.job.config.override_dirname.exclude_keys),
            numbered=not any(grid in str(hydra.sweeper.get("_target_", "")) for grid in GRID_SWEEPERS),
        )
        plan.defining = [key for key in defining_keys(config) if key not in plan.keys]
        plan.save(sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        from dltips.observe.aggregate import write_means  # matplotlib and friends: only when a sweep ends
        from dltips.observe.compare import summarize

        rows = summarize(sweep_dir, figures=self.figures)
        log.info("sweep summary: %s", sweep_dir / "summary.md")
        if write_means(sweep_dir):
            log.info("means over seeds: %s (run filter ^~mean)", sweep_dir / "~mean")
        log.info("view it: tensorboard --logdir %s", sweep_dir)
        failed = [row["run"] for row in rows if row["status"] == report.FAILED]
        unfinished = [
            f"{row['run']} ({row['status']})" for row in rows if row["status"] not in (*report.FINISHED, report.FAILED)
        ]
        problems = []
        if failed:
            problems.append(f"{len(failed)} of {len(rows)} jobs failed: {listed(failed)} (see error.txt in each)")
        if unfinished:
            problems.append(
                f"{len(unfinished)} of {len(rows)} jobs did not finish: {listed(unfinished)} "
                f"(re-running the sweep with hydra.sweep.dir={sweep_dir} continues them)"
            )
        if problems:
            raise SystemExit("; ".join(problems))


# Runs a sweep's last line names: a 1,024-point sweep whose config error fails every job says
# so in one readable line; summary.md lists them all.
NAMED_RUNS = 5


def listed(runs: list[str]) -> str:
    """The first NAMED_RUNS runs, and how many more."""
    more = len(runs) - NAMED_RUNS
    return ", ".join(runs[:NAMED_RUNS]) + (f" and {more} more (summary.md lists them all)" if more > 0 else "")


def share_cores(launcher: DictConfig) -> int | None:
    """Jobs running side by side (the joblib launcher) split the cores between them instead of
    each starting one torch thread per core and oversubscribing the CPU: returns a job's share,
    the most threads it uses (None for launchers that run one job at a time)."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    cores = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs") or -1
    parallel = min(cores, n_jobs if n_jobs > 0 else cores + 1 + n_jobs)  # joblib: -1 = all cores
    share = max(1, cores // max(1, parallel))
    torch.set_num_threads(share)  # its set-up (loading the data) too
    return share


def log_failure(err: BaseException) -> None:
    """A job's failure in the log: a bad config or checkpoint in one line, anything else with
    its traceback."""
    from dltips.config.errors import ConfigError
    from dltips.run.checkpoint import CheckpointError

    if isinstance(err, (ConfigError, CheckpointError)):
        log.error("%s: %s", "config error" if isinstance(err, ConfigError) else "checkpoint error", err)
    else:
        log.error("job failed", exc_info=err)


def record_failure(run_dir: Path, err: BaseException) -> None:
    """A failed job's error.txt and `failed` metrics.json, for the summary and a re-run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.txt").write_text("".join(traceback.format_exception(err)) + f"{type(err).__name__}: {err}\n")
    report.write(run_dir, report.FAILED, f"{type(err).__name__}: {err}")
