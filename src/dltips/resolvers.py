"""What composing the configs needs, and nothing heavier: where they are and the resolvers that
configs/hydra/ calls. It imports no torch, so `dltips-train --help`, `--cfg` and `--info`
answer in a fraction of the time torch takes to import. Importing it registers the resolvers.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from dltips.sweep_plan import job_name

# Only the repo's configs/ in a checkout; the copy bundled into the package in a wheel.
_PACKAGE = Path(__file__).resolve().parent
CONFIG_DIR = str(_PACKAGE / "configs" if (_PACKAGE / "configs").is_dir() else _PACKAGE.parents[1] / "configs")

# Run directories: outputs/runs/<date>_<time>_<overrides>, without a dangling "_" when none.
OmegaConf.register_new_resolver("dltips.suffix", lambda s: f"_{s}" if s else "", replace=True)
# Sweep jobs: outputs/sweeps/<date>_<time>/<the swept keys and this job's values> (dltips.sweep_plan).
OmegaConf.register_new_resolver(
    "dltips.job_name",
    lambda sweep_dir, overrides, num, fallback: job_name(str(sweep_dir), [str(o) for o in overrides], int(num), str(fallback)),
    replace=True,
)
# resume=<run dir> continues in that directory: Hydra opens no new one and writes no .hydra/
# record there (the run's own record of how it was started stays), its log goes on in the
# run's train.log.
OmegaConf.register_new_resolver("dltips.run_dir", lambda resume, new: str(resume) if resume else new, replace=True)
OmegaConf.register_new_resolver("dltips.record_dir", lambda resume: None if resume else ".hydra", replace=True)
