"""`hydra/launcher=stacked`: a sweep's jobs trained in stacks of compatible configs.

Every job is first set up as Hydra's basic launcher sets it up (its directory, .hydra/, its
config checked against an earlier attempt: skipped when finished, resumed when interrupted);
then the jobs whose configs may train together (dltips.config.stackable.stack_key) are trained as one
stack each, at most `max_members` at a time, through the one training loop. Each job's
directory ends up as the basic launcher leaves it, so dltips-compare and TensorBoard cannot
tell the difference. A job that fits no stack, and one resumed from its last.pt, trains alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn,
    configure_log,
    filter_overrides,
    setup_globals,
)
from hydra.types import HydraContext as Hydra
from omegaconf import DictConfig, open_dict

from dltips.config import claims
from dltips.config.errors import ConfigError
from dltips.config.stackable import in_stacks, stack_key
from dltips.engine.loop import train_networks
from dltips.launch.collector import collected_young, frozen
from dltips.launch.compose import compose_job_and_task
from dltips.launch.hydra_job import run_owned_job
from dltips.launch.job import Job, ended, set_up, training_code_loaded
from dltips.run import checkpoint
from dltips.run.files import allow_open_files
from dltips.train import train_prepared

log = logging.getLogger("dltips")


@dataclass
class Pending:
    """A job set up and waiting for its stack."""

    job: Job
    key: str  # jobs with equal keys train together; "" trains alone
    log_file: Path  # the job's train.log

    @property
    def out(self) -> Path:
        return self.job.out


def prepare(cfg: DictConfig) -> Pending | float:
    """The task function of the set-up pass, run by Hydra inside the job's own context: the job
    set up as every launcher sets it up (dltips.launch.job.set_up), or a finished job's val/acc.
    A job whose config is rejected here is recorded as dltips.launch.job records it."""
    hydra = HydraConfig.get()
    out = Path(hydra.runtime.output_dir)
    try:
        job = set_up(cfg)
        if not isinstance(job, Job):
            claims.release(out)  # finished: not trained, its directory free again
            return job
        with open_dict(job.cfg):  # Hydra's context is the job's only now
            job.cfg.output_dir = str(out)
        alone = job.cfg.get("resume") or job.cfg.trainer.seeds != 1
        return Pending(job, "" if alone else stack_key(job.cfg), out / f"{hydra.job.name}.log")
    except Exception as err:  # noqa: BLE001 (recorded in the job's directory; the sweep goes on)
        claims.release(out)
        ended(err, [out], in_sweep=True)
    return math.nan


def launch(
    hydra: Hydra,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    indices: Sequence[int],
    max_members: int,
    job_id: str | None = None,
) -> list[JobReturn]:
    """Set up every job (`indices`: their hydra.job.num), then train them in stacks; `job_id`:
    hydra.job.id of every job (a SLURM task's id), else each job's number."""
    training_code_loaded()
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    log.info("Launching %d jobs in stacks of up to %d", len(job_overrides), max_members)
    returns = set_up_jobs(hydra, config, job_overrides, indices, job_id)
    pending = [(i, ret.return_value) for i, ret in enumerate(returns) if isinstance(ret.return_value, Pending)]
    if pending:  # the jobs' own log format while the stacks train (file handlers: logs_to)
        configure_log(returns[pending[0][0]].hydra_cfg.hydra.job_logging, config.hydra.verbose)
    with frozen():  # every job's config lives to the sweep's end: no collection need scan it again
        for stack in in_stacks([p.key for _, p in pending], max_members):
            group = [pending[j] for j in stack]
            for (i, _), value in zip(group, train_stack([p for _, p in group])):
                returns[i].return_value = value
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return returns


def set_up_jobs(
    hydra: Hydra,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    indices: Sequence[int],
    job_id: str | None = None,
) -> list[JobReturn]:
    """Every job set up as Hydra's basic launcher sets it up, one after another: its return
    value is its Pending, or a finished job's val/acc."""
    returns = []
    with collected_young() as job_done:
        for idx, overrides in zip(indices, job_overrides):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            sweep_config, task_config = compose_job_and_task(hydra.config_loader, config, overrides)
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = job_id or idx
                sweep_config.hydra.job.num = idx
            handlers = logging.getLogger().handlers[:]
            returns.append(run_owned_job(hydra, prepare, sweep_config, task_config))
            if logging.getLogger().handlers != handlers:  # the job's logging was configured: Hydra's
                configure_log(config.hydra.hydra_logging, config.hydra.verbose)  # again, as after each basic job
            job_done()
    return returns


def train_stack(group: list[Pending]) -> list[float]:
    """Train the group together; returns each job's val/acc (NaN where it failed or diverged).
    A config error is found job by job, so that one bad job fails alone."""
    allow_open_files(len(group), per_network=3)  # its .lock, its event file and its train.log
    with logs_to(group):
        if len(group) > 1:
            log.info("training %d jobs together: %s", len(group), ", ".join(p.out.name for p in group))
        try:
            if group[0].job.cfg.trainer.seeds != 1:  # a job of several seeds, alone (its key is "")
                return [value_of({"metrics": train_prepared(group[0].job.cfg, group[0].job.context)})]
            ms = train_networks([p.job.cfg for p in group], [p.job.context for p in group])
            return [value_of(m.report) for m in ms.members]
        except (ConfigError, checkpoint.CheckpointError) as err:
            if len(group) == 1:
                ended(err, [group[0].out], in_sweep=True)
            else:
                return [value for p in group for value in train_stack([p])]
        except BaseException as err:  # noqa: BLE001 (ended() re-raises what it does not handle)
            ended(err, [p.out for p in group], in_sweep=True)
    return [math.nan] * len(group)


def value_of(report: dict) -> float:
    value = report["metrics"].get("val/acc")
    return math.nan if value is None else value


@contextmanager
def logs_to(group: list[Pending]) -> Iterator[None]:
    """The stack's log lines into every member's train.log, a line about one member (its
    epochs: dltips.observe.console.Epochs.line) into its own only, as each job alone writes its log."""
    root = logging.getLogger()
    previous = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    formatter = previous[0].formatter if previous else None
    for h in previous:
        root.removeHandler(h)
    files = {p.out: logging.FileHandler(p.log_file, mode="a") for p in group}
    for handler in files.values():
        handler.setFormatter(formatter)
    router = ByRun(files)
    root.addHandler(router)
    try:
        yield
    finally:
        root.removeHandler(router)
        for h in files.values():
            h.close()
        for h in previous:
            root.addHandler(h)


class ByRun(logging.Handler):
    """The train.log files of a stack's members behind one handler: a line about one run (its
    record's run_dir) goes to the file of that run's job alone (a seed's run of a
    `trainer.seeds` job is inside the job's directory), any other line to every file. One filter
    per file on the root logger would ask every file about every member's epoch line."""

    def __init__(self, files: dict[Path, logging.Handler]) -> None:
        super().__init__()
        self.files = files

    def emit(self, record: logging.LogRecord) -> None:
        run_dir = getattr(record, "run_dir", None)
        if run_dir is None:
            for handler in self.files.values():
                handler.handle(record)
            return
        job = next((d for d in (Path(run_dir), *Path(run_dir).parents) if d in self.files), None)
        if job is not None:
            self.files[job].handle(record)
