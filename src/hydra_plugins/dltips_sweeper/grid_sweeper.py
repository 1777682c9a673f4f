"""`hydra/sweeper=grid` (configs/hydra/sweeper/grid.yaml), dltips' default sweeper. Hydra
instantiates sweepers only from the `hydra_plugins` package; the work is done in
dltips.launch.grid."""

from __future__ import annotations

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class GridSweeper(Sweeper):
    """Every combination of the comma-separated values, as Hydra's basic sweeper runs them
    (dltips.launch.grid)."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        self.max_batch_size, self.params = max_batch_size, dict(params or {})

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from dltips.launch.grid import sweep

        return sweep(self.hydra_context, self.config, self.launcher, self.params, arguments, self.max_batch_size)
