"""`hydra/launcher=slurm` (configs/hydra/launcher/slurm.yaml): Hydra's submitit SLURM launcher,
whose sweep goes on past a job SLURM cancels or kills. Hydra instantiates launchers only from the
`hydra_plugins` package; the work is done in dltips.launch.slurm."""

from __future__ import annotations

from typing import Sequence

from hydra.core.utils import JobReturn

from hydra_plugins.hydra_submitit_launcher import submitit_launcher


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """Submits only the points not finished yet, records a job SLURM ended as a point of the
    sweep instead of raising, and says why a job stays pending when waiting will not help."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dltips.launch.slurm import launch

        return launch(self, job_overrides, initial_job_idx)
