"""The schema of `hydra/launcher=slurm` (configs/hydra/launcher/slurm.yaml): submitit's SLURM keys
plus dltips' own. Registered by hydra_plugins.dltips_slurm.config; kept in an importable module
of its own so that a config typed by it pickles (Hydra loads plugin modules outside sys.modules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf


@dataclass
class DltipsSlurmConf(SlurmQueueConf):
    # One array task trains a stack of the sweep's compatible points (dltips.launch.slurm).
    stack: bool = False
    # The most points one stacked task trains.
    max_members: int = 64
    # The most tasks per job array; None: the cluster's MaxArraySize (scontrol show config).
    max_array_size: Optional[int] = None
