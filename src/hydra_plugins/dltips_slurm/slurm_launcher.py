"""`hydra/launcher=slurm` (configs/hydra/launcher/slurm.yaml): Hydra's submitit SLURM launcher,
whose sweep goes on past a job SLURM cancels or kills, and which can train the sweep's points in
stacks, one array task per stack (`hydra.launcher.stack=true`). Hydra instantiates launchers only
from the `hydra_plugins` package; the work is done in dltips.launch.slurm."""

from __future__ import annotations

from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn

from hydra_plugins.hydra_submitit_launcher import submitit_launcher


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """Submits only the points not finished yet, records a job SLURM ended as a point of the
    sweep instead of raising, and says why a job stays pending when waiting will not help."""

    def __init__(
        self, stack: bool = False, max_members: int = 64, max_array_size: int | None = None, **params: Any
    ) -> None:
        from dltips.config.stackable import check_max_members

        super().__init__(**params)  # submitit's own keys: what sbatch is asked for
        self.stack, self.max_members = bool(stack), check_max_members(max_members, "hydra.launcher.max_members")
        if max_array_size is not None:
            check_max_members(max_array_size, "hydra.launcher.max_array_size")
        self.max_array_size = max_array_size

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dltips.launch.slurm import launch

        return launch(self, job_overrides, initial_job_idx)


class StackTask:
    """One array task of a stacked SLURM sweep: its points set up and trained as
    hydra/launcher=stacked trains them (dltips.launch.stacked), each in its own run directory."""

    def __init__(self, launcher: SlurmLauncher) -> None:
        self.launcher = launcher

    def __call__(self, points: list[tuple[list[str], int]], singleton_state: dict) -> list[JobReturn]:
        import submitit

        from dltips.launch.stacked import launch

        Singleton.set_state(singleton_state)
        overrides, indices = zip(*points)
        job_id = submitit.JobEnvironment().job_id
        launcher = self.launcher
        return launch(launcher.hydra_context, launcher.config, overrides, indices, launcher.max_members, job_id)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeued before the time limit: the same task again, whose points go on from their last.pt."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
