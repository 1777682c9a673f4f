"""One job of `dltips-train` (dltips.launch.cli): a single run, or one point of a sweep, set up
and ended the same way by every launcher (basic, joblib, submitit, SLURM, stacked).

A bad config is one line, and leaves no run directory; in a sweep, a finished job is skipped, a
job an earlier attempt left unfinished (killed, interrupted, requeued by SLURM) goes on from its
last.pt, a failing job is recorded in its directory (error.txt, metrics.json) and the sweep goes
on (see dltips.launch.sweep); a signal stops it with 130 or 143, and in a SLURM job the one before
the time limit requeues it (dltips.run.interrupt.hand_on).
"""

from __future__ import annotations

import functools
import logging
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from dltips.config import claims
from dltips.config.errors import ConfigError
from dltips.config.plan import Plan
from dltips.engine.members import HydraContext
from dltips.launch.collector import started
from dltips.launch.sweep import log_failure, record_failure, share_cores
from dltips.observe.hparams import chosen_groups
from dltips.run import checkpoint, report
from dltips.run.interrupt import Interrupted, hand_on
from dltips.run.rundir import finished_value, redo
from dltips.train import prepare, train_prepared

log = logging.getLogger("dltips")


@functools.cache  # once a process
def training_code_loaded() -> None:
    """Whatever trains, or waits for jobs, in this process (the task function, the stacked and
    SLURM launchers) calls this once this module, and the training code with it, is imported:
    everything alive is then frozen out of the garbage collector's passes
    (dltips.launch.collector.started). torch's optimizers import more the first time one is
    built (torch._dynamo in torch 2: about a second, and as many objects again): one is built
    here first, so that it is frozen with the rest."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
    started()


@dataclass
class Job:
    """A job set up to train: its config as it trains and what Hydra chose for it."""

    cfg: DictConfig
    context: HydraContext

    @property
    def out(self) -> Path:
        return Path(self.cfg.output_dir)


def run(cfg: DictConfig) -> float:
    """The task function: run the job; returns its val/acc (the objective of Hydra's Optuna sweeper)."""
    cores = share_cores(HydraConfig.get().launcher)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        job = set_up(cfg, cores)
        if not isinstance(job, Job):
            return job
        return train_prepared(job.cfg, job.context)["val/acc"]
    except BaseException as err:  # noqa: BLE001 (ended() re-raises what it does not handle)
        ended(err, [out], in_sweep)
    finally:  # a job that ended before its run took its directory's claim over drops it
        claims.release(out)
    return float("nan")


def set_up(cfg: DictConfig, cores: int | None = None) -> Job | float:
    """Inside the job's Hydra context: a finished sweep job's val/acc (a re-run skips it), or
    the job to train, its unfinished earlier attempt resumed from its last.pt."""
    hydra = HydraConfig.get()
    if hydra.mode == RunMode.MULTIRUN:
        run_dir = Path(hydra.runtime.output_dir)  # cfg.output_dir, without resolving it
        value = finished_value(run_dir)
        if value is not None:
            return value
        cfg = redo(cfg, run_dir)
    return Job(prepare(cfg, command_line_overrides(cfg)), HydraContext(*hydra_context(), cores=cores))


def ended(err: BaseException, run_dirs: list[Path], in_sweep: bool) -> None:
    """How a job that raised ends, for every launcher: a signal exits 130 or 143 (a SLURM job
    requeued first); a bad config or checkpoint is one line; in a sweep the failure is recorded
    in each job's directory and the sweep goes on; outside one, a rejected command leaves no
    directory behind and exits 2. Anything else outside a sweep is raised on."""
    if isinstance(err, Interrupted):
        log.warning("interrupted by %s", err.message)
        try:
            hand_on(err.signum)  # in a SLURM job: requeued, to go on from last.pt
        except Exception as refused:  # noqa: BLE001 (submitit's reason not to requeue)
            log.warning("not requeued: %s; re-running the sweep into its directory continues it", refused)
        logging.disable(logging.CRITICAL)  # what it said is all: no exit hook's log after it
        raise SystemExit(err.exit_code) from None
    if isinstance(err, KeyboardInterrupt):  # a signal outside the loop: set-up, the final evaluation
        signum = getattr(err, "signum", signal.SIGINT)
        for run_dir in run_dirs:
            stopped_outside_the_loop(run_dir, signum, in_sweep)
        logging.disable(logging.CRITICAL)  # what it said is all: no exit hook's log after it
        raise SystemExit(128 + signum) from None
    if not isinstance(err, Exception):  # SystemExit
        raise err
    known = isinstance(err, (ConfigError, checkpoint.CheckpointError))
    if not in_sweep and not known:
        raise err
    if not known and not_requeued(err):  # SLURM's time limit outside the loop: last.pt is as the last epoch left it
        log.warning("stopped before the time limit and not requeued: %s", err)
        raise SystemExit(128 + signal.SIGUSR2) from None
    log_failure(err)
    if not in_sweep:
        for run_dir in run_dirs:
            remove_if_only_hydras(run_dir)
        raise SystemExit(2) from None
    for run_dir in run_dirs:
        record_failure(run_dir, err)


def stopped_outside_the_loop(run_dir: Path, signum: int, in_sweep: bool) -> None:
    """A run stopped by a signal before or after its loop: `interrupted` where it has a last.pt
    to go on from and no final report yet; else nothing to resume, and a command's own new
    directory is removed as for a rejected config."""
    name = signal.Signals(signum).name
    if (run_dir / "last.pt").is_file() and report.finished(run_dir) is None:
        hint = f"dltips-train \"resume='{run_dir}'\""
        report.write(run_dir, report.INTERRUPTED, f"{name} outside the training loop; resume with: {hint}")
        log.warning("interrupted by %s; resume with: %s", name, hint)
        return
    log.warning("interrupted by %s before training started: nothing to resume (%s)", name, run_dir)
    if not in_sweep:
        remove_if_only_hydras(run_dir)


def command_line_overrides(cfg: DictConfig) -> list[str]:
    """What the command line changed next to `resume`, for dltips.run.resume to check. A sweep
    job re-run into its own directory (dltips.run.rundir.redo) goes on with the overrides it
    was started with: nothing is changed."""
    hydra_cfg = HydraConfig.get()
    if (
        hydra_cfg.mode == RunMode.MULTIRUN
        and cfg.get("resume")
        and Path(cfg.resume).resolve() == Path(hydra_cfg.runtime.output_dir).resolve()
    ):
        return []
    return list(hydra_cfg.overrides.task)


def hydra_context() -> tuple[dict[str, str], list[str], Plan | None]:
    """The config groups chosen, the command-line overrides and, in a sweep, the sweep's plan
    (dltips.config.plan)."""
    hydra_cfg = HydraConfig.get()
    choices = chosen_groups(hydra_cfg.runtime.choices)
    plan = Plan.load(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None
    return choices, list(hydra_cfg.overrides.task), plan


def not_requeued(err: Exception) -> bool:
    """submitit's refusal to requeue a job at its time limit (too many times already)."""
    submitit = sys.modules.get("submitit")
    return submitit is not None and type(err) is submitit.core.utils.UncompletedJobError


def remove_if_only_hydras(run_dir: Path) -> None:
    """Hydra opens a run's directory (.hydra/ and train.log) before the config is checked: a
    rejected command leaves nothing behind. A directory holding anything else, or without Hydra's
    .hydra/ record of this start (a resumed run's, a directory the user made), is left alone."""
    names = {p.name for p in run_dir.iterdir()} if run_dir.is_dir() else set()
    if ".hydra" not in names or names - {".hydra", "train.log", claims.LOCK}:
        return
    claims.release(run_dir)
    root = logging.getLogger()
    for handler in list(root.handlers):  # Hydra's file handler has train.log open
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir.resolve():
            root.removeHandler(handler)
            handler.close()
    shutil.rmtree(run_dir, ignore_errors=True)
