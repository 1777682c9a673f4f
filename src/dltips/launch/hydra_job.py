"""One Hydra job as `hydra.core.utils.run_job` runs it, for a launcher that owns the job's config.

Hydra's run_job may be handed a config its caller keeps, so it copies Hydra's node out of it
and sets Hydra's global config twice, once before and once after it knows the job's directory:
two copies of about 10 ms each, where a stacked sweep's whole set-up of a job should take about
that; and it copies the whole config again to drop Hydra's node for the task function. The
stacked launcher composes every job's config afresh, and the task's config with it
(dltips.launch.compose), and hands both over: here the job's directory is resolved from the
config itself and Hydra's global config is the job's own config, uncopied. What the job sees
and leaves is run_job's: the same directory, .hydra/config.yaml, hydra.yaml and
overrides.yaml, its lines logged as hydra.job_logging configures it (only once it logs one:
job_logging), the environment, working directory and job callbacks (tests/test_stacking.py
compares every file with the basic launcher's).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, env_override
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from dltips.config.yaml_files import to_yaml


def save(cfg, path: Path) -> None:
    """OmegaConf.to_yaml's text of a config (or of a dict of config nodes), as run_job writes it
    (dltips.config.yaml_files: much faster)."""
    with open(path, "w", encoding="utf-8") as file:
        file.write(to_yaml(cfg))


class Held(logging.Handler):
    """The records logged while a job's logging is not configured yet."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def job_logging(hydra_cfg: DictConfig) -> Iterator[None]:
    """Hydra's job logging (hydra.job_logging: the console's format, the job's train.log) for the
    block, configured only if the block logs: its records are held, then handled through the
    job's logging, configured at the block's end. A stacked sweep's job mostly logs nothing while
    it is set up, and configuring its logging, then Hydra's own again for the next job's line,
    took a sixth of its set-up. The logging before is back after a block that logged nothing."""
    root = logging.getLogger()
    before, held = root.handlers[:], Held()
    for handler in before:
        root.removeHandler(handler)
    root.addHandler(held)
    try:
        yield
    finally:
        root.removeHandler(held)
        for handler in before:
            root.addHandler(handler)
        if held.records:
            configure_log(hydra_cfg.hydra.job_logging, hydra_cfg.hydra.verbose)
            for record in held.records:
                logging.getLogger(record.name).handle(record)


def run_owned_job(
    hydra: HydraContext, task_function: TaskFunction, config: DictConfig, task_cfg: DictConfig
) -> JobReturn:
    """run_job(…, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir") for a
    config no one else holds, `task_cfg` the same without Hydra's node (what run_job copies
    for the task function; dltips.launch.compose.compose_job_and_task)."""
    before, old_cwd = HydraConfig.instance().cfg, os.getcwd()
    # The sweep's directory names interpolate the config itself, not Hydra's global config.
    output_dir = os.path.join(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = os.path.abspath(output_dir)
    # What set_config would hold (the hydra node, read-only, its parent the job's config), without
    # its copy of the node (a fifth of a job's set-up): this config is the job's alone.
    OmegaConf.set_readonly(config.hydra, True)
    HydraConfig.instance().cfg = hydra_cfg = config
    chdir = bool(hydra_cfg.hydra.job.chdir)
    try:
        ret = JobReturn()
        ret.hydra_cfg, ret.overrides = hydra_cfg, OmegaConf.to_container(config.hydra.overrides.task)
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        if chdir:
            os.chdir(output_dir)
        ret.working_dir = os.getcwd()
        with job_logging(hydra_cfg):
            record = config.hydra.output_subdir  # resolved here: it claims the directory first
            ret.cfg = task_cfg
            if record is not None:
                out = Path(hydra_cfg.hydra.runtime.output_dir) / str(record)
                out.mkdir(parents=True, exist_ok=True)
                save(task_cfg, out / "config.yaml")
                save({"hydra": config.hydra}, out / "hydra.yaml")
                save(config.hydra.overrides.task, out / "overrides.yaml")
            with env_override(hydra_cfg.hydra.job.env_set):
                hydra.callbacks.on_job_start(config=config, task_function=task_function)
                try:
                    ret.return_value, ret.status = task_function(task_cfg), JobStatus.COMPLETED
                except Exception as err:  # noqa: BLE001 (run_job's contract: the error is the return value)
                    ret.return_value, ret.status = err, JobStatus.FAILED
            ret.task_name = hydra_cfg.hydra.job.name
            hydra.callbacks.on_job_end(config=config, job_return=ret)
        return ret
    finally:
        HydraConfig.instance().cfg = before
        if chdir:
            os.chdir(old_cwd)
