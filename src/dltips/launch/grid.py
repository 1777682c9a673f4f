"""The grid sweep: every combination of the comma-separated values of a command line (and of
`hydra.sweeper.params`), in the order and batches Hydra's basic sweeper gives them.

What differs from Hydra's basic sweeper is only how a batch is checked before it is launched:
Hydra composes every job's config for that, about 0.1 s a job; here each job is composed by
dltips.launch.compose, once per distinct group choice, and the launcher reuses those
compositions. A job that cannot be composed still stops the sweep before any job runs, with
Hydra's own error.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from dltips.launch.compose import compose_job


def grid(overrides) -> list[list[str]]:
    """Every job's overrides: the product of each key's values, a later override of a key
    replacing an earlier one."""
    final: dict[str, list[str]] = {}
    for o in overrides:
        key = o.get_key_element()
        if not o.is_sweep_override():
            final[key] = [f"{key}={o.get_value_element_as_str()}"]
        elif o.is_discrete_sweep():
            final[key] = [f"{key}={value}" for value in o.sweep_string_iterator()]
        else:
            raise HydraException(f"hydra/sweeper=grid does not support sweep type: {o.value_type.name}")
    return [list(job) for job in itertools.product(*final.values())]


def sweep(hydra, config: DictConfig, launcher, params: dict[str, str], arguments: list[str], max_batch_size):
    parser = OverridesParser.create(config_loader=hydra.config_loader)
    jobs = grid(parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(arguments)))
    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    size = max_batch_size if max_batch_size and max_batch_size > 0 else len(jobs)
    returns = []
    for start in range(0, len(jobs), size):
        batch = jobs[start : start + size]
        for overrides in batch:  # every job composes, before any of the batch runs
            compose_job(hydra.config_loader, config, overrides, check_only=True)
        results = launcher.launch(batch, initial_job_idx=start)
        for result in results:
            _ = result.return_value  # a job that raised: raised here, as Hydra's sweepers do
        returns.append(results)
    return returns
