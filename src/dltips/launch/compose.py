"""A sweep job's config without Hydra's whole compose for every job.

Hydra composes each job of a sweep from nothing (the defaults tree, every YAML file, the
overrides): about 0.1 s a job on this machine, twice per job (the sweeper validates the batch,
then the launcher composes it again), which a 1,024-point sweep pays for minutes while its
networks train in seconds. Most jobs differ from each other only in values (`optimizer.lr=0.1
seed=3`), not in the config groups they choose. So a job's config is composed by Hydra once per
distinct set of *structural* overrides (config groups, `+`/`++`/`~`, anything under `hydra`),
and each job copies that and applies its value overrides as Hydra's config loader applies them
(OmegaConf.update with merge, in struct mode), then records its overrides and override_dirname
as Hydra records them. Anything this cannot reproduce (a key the config does not have: Hydra's
own error) goes through Hydra's compose. tests/test_compose.py holds the result equal to
Hydra's for sweeps that mix group and value overrides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from dltips.config.copies import copied, from_template, template
from dltips.config.plan import parse

# (config name, the sweep's hydra overrides, a job's structural overrides) -> the config Hydra
# composed for them, and its templates with and without Hydra's node. Every sweep of a process
# reuses them; a few kB per distinct group choice.
BASES: dict[tuple, tuple[DictConfig, bytes, bytes]] = {}
ABSENT = object()


def is_value(override: Override, groups) -> bool:
    """A plain `key=value` of a key that is no config group: applied to a copy, not composed."""
    key = override.key_or_group
    return not (
        override.is_delete()
        or override.is_add()
        or override.is_force_add()
        or override.is_hydra_override()
        or override.package is not None
        or "/" in key
        or key in groups
    )


def compose_job(loader, master: DictConfig, overrides: Sequence[str], check_only: bool = False) -> DictConfig | None:
    """What `loader.load_sweep_config(master, overrides)` returns, composing only once per
    distinct set of structural overrides; `check_only`: raise Hydra's error if the job cannot
    be composed, and build nothing (a sweeper checking a batch)."""
    found = composed(loader, master, overrides, check_only, with_task=False)
    return None if found is None else found[0]


def compose_job_and_task(loader, master: DictConfig, overrides: Sequence[str]) -> tuple[DictConfig, DictConfig]:
    """The job's config (compose_job) and the config its task function gets: the same without
    Hydra's node, as Hydra's run_job copies it. Copied from a template of its own: Hydra's node
    is most of a config, and copying the job's whole config to drop it took a tenth of a job's
    set-up."""
    return composed(loader, master, overrides, check_only=False, with_task=True)


def composed(
    loader, master: DictConfig, overrides: Sequence[str], check_only: bool, with_task: bool
) -> tuple[DictConfig, DictConfig] | None:
    """The job's config and, `with_task`, its task's (else the job's config again); None when
    `check_only` finds the job can be composed."""
    parsed = parse(list(overrides))
    groups = set(master.hydra.runtime.choices)
    values = [o for o in parsed if is_value(o, groups)]
    structural = [o.input_line for o in parsed if not is_value(o, groups)]
    key = (master.hydra.job.config_name, tuple(master.hydra.overrides.hydra), tuple(structural))
    if key not in BASES:
        base = loader.load_sweep_config(master, structural)
        BASES[key] = base, template(base), template(without_hydra(base))
    base, whole, task = BASES[key]  # a job's copy: unpickled, a third of a deepcopy's time
    if any(OmegaConf.select(base, o.key_or_group, default=ABSENT, throw_on_missing=False) is ABSENT for o in values):
        cfg = loader.load_sweep_config(master, list(overrides))  # Hydra's own error for it
        return cfg, without_hydra(cfg)
    if check_only:
        return None
    configs = [from_template(whole), from_template(task)] if with_task else [from_template(whole)]
    for cfg in configs:
        for o in values:
            OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
        OmegaConf.copy_cache(from_config=master, to_config=cfg)
    cfg = configs[0]
    task_overrides = [o for o in parsed if not o.is_hydra_override()]
    cfg.hydra.overrides.task = [o.input_line for o in task_overrides]
    cfg.hydra.job.override_dirname = override_dirname(task_overrides, cfg.hydra.job.config.override_dirname)
    return cfg, configs[-1]


def without_hydra(cfg: DictConfig) -> DictConfig:
    """A copy of the config, Hydra's node deleted from it as run_job deletes it."""
    cfg = copied(cfg)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def override_dirname(overrides: list[Override], settings) -> str:
    """hydra.job.override_dirname as Hydra writes it: the overrides but the excluded keys,
    sorted, joined by item_sep, with kv_sep for "="."""
    lines = sorted(o.input_line for o in overrides if o.key_or_group not in settings.exclude_keys)
    return re.sub("[=]", settings.kv_sep, settings.item_sep.join(lines))
