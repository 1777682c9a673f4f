"""`hydra/launcher=stacked` (configs/hydra/launcher/stacked.yaml). Hydra instantiates launchers
only from the `hydra_plugins` package; the work is done in dltips.launch.stacked."""

from __future__ import annotations

from typing import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class StackedLauncher(Launcher):
    """Trains a sweep's compatible jobs together, each stack in one pass (dltips.launch.stacked)."""

    def __init__(self, max_members: int = 64) -> None:
        from dltips.config.stackable import check_max_members

        self.max_members = check_max_members(max_members, "hydra.launcher.max_members")

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dltips.launch.stacked import launch  # torch and the training code: only once there are jobs

        indices = range(initial_job_idx, initial_job_idx + len(job_overrides))
        return launch(self.hydra_context, self.config, job_overrides, indices, self.max_members)
