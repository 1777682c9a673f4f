"""The schema of `hydra/launcher=slurm` (configs/hydra/launcher/slurm.yaml): submitit's SLURM
keys plus dltips' own. Hydra imports every module of hydra_plugins when it looks for plugins,
which registers it before any config is composed."""

# No `from __future__ import annotations`: Hydra loads plugin modules without entering them in
# sys.modules, where dataclasses look up string annotations.
from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore

from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf


@dataclass
class DltipsSlurmConf(SlurmQueueConf):
    # One array task trains a stack of the sweep's compatible points (dltips.launch.slurm).
    stack: bool = False
    # The most points one stacked task trains.
    max_members: int = 64
    # The most tasks per job array; None: the cluster's MaxArraySize (scontrol show config).
    max_array_size: Optional[int] = None


ConfigStore.instance().store(
    group="hydra/launcher", name="dltips_slurm_schema", node=DltipsSlurmConf, provider="dltips"
)
