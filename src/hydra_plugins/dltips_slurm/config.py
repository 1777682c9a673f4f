"""Registers the schema of `hydra/launcher=slurm` (dltips.launch.slurm_schema): Hydra imports
every module of hydra_plugins when it looks for plugins, before any config is composed."""

from hydra.core.config_store import ConfigStore

from dltips.launch.slurm_schema import DltipsSlurmConf

ConfigStore.instance().store(
    group="hydra/launcher", name="dltips_slurm_schema", node=DltipsSlurmConf, provider="dltips"
)
