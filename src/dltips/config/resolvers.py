"""What composing the configs needs, and nothing heavier: where they are and the resolvers that
configs/hydra/ calls. It imports no torch, so `dltips-train --help`, `--cfg` and `--info`
answer in a fraction of the time torch takes to import. Importing it registers the resolvers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import OmegaConf

from dltips.config.claims import hold
from dltips.config.errors import ConfigError
from dltips.config.plan import job_name, one_name

# Only the repo's configs/ in a checkout; the copy bundled into the package in a wheel.
_PACKAGE = Path(__file__).resolve().parents[1]  # src/dltips (this file is in dltips/config/)
CONFIG_DIR = str(_PACKAGE / "configs" if (_PACKAGE / "configs").is_dir() else _PACKAGE.parents[1] / "configs")

# A directory name's limit on common file systems is 255 bytes; the date and time take 20.
NAME_BYTES = 220


def suffix(overrides: str) -> str:
    """Run directories: outputs/runs/<date>_<time>_<overrides>, without a dangling "_" when none;
    overrides too long for a file name (a value with 300 digits) end in a hash of the rest
    (the run's config.yaml holds them whole); a value's slashes do not nest the directory."""
    if not overrides:
        return ""
    overrides = one_name(overrides)
    if len(overrides.encode()) > NAME_BYTES:
        digest = hashlib.sha1(overrides.encode()).hexdigest()[:8]
        overrides = overrides.encode()[: NAME_BYTES - 12].decode(errors="ignore") + "…" + digest  # "…": 3 bytes
    return f"_{overrides}"


OmegaConf.register_new_resolver("dltips.suffix", suffix, replace=True)


# The resolvers of hydra.sweep.subdir and hydra.output_subdir read the keys they need from the
# job's config (`_root_`) rather than taking them as nested interpolations: OmegaConf parses an
# interpolation's text every time it resolves it, and `${a:${b},${c},${d}}` takes about eight
# times as long as `${a:}`, paid by every job of a sweep.
def job_subdir(*, _root_) -> str:
    """hydra.sweep.subdir: outputs/sweeps/<date>_<time>/<the swept keys and this job's values>
    (dltips.config.plan.job_name)."""
    hydra = _root_.hydra
    overrides = [str(o) for o in hydra.overrides.task]
    return job_name(str(hydra.sweep.dir), overrides, int(hydra.job.num), str(hydra.job.override_dirname))


OmegaConf.register_new_resolver("dltips.job_name", job_subdir, replace=True)


# resume=<run dir> continues in that directory: Hydra opens no new one and writes no .hydra/
# record there (the run's own record of how it was started stays), its log goes on in the
# run's train.log.
def claim(path: str) -> str:
    """A new run or sweep directory of its own: `path`, or `path_2`, `path_3`, … when another run
    started in the same second with the same overrides took it. Made here (mkdir fails on a
    name taken, so two processes never get one name); resolved once per config (cached), and
    sweep jobs get their sweep's resolved value with the config Hydra hands them."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        name = path if n == 1 else f"{path}_{n}"
        try:
            Path(name).mkdir()
            return name
        except FileExistsError:
            continue
    raise FileExistsError(path)


def not_a_run(path: str | Path) -> str | None:
    """Why `path` is not a run directory dltips wrote, or None when it is one: a resumed run's
    directory is where Hydra writes its log, so anything else is refused before it does."""
    path = Path(path)
    if not path.is_dir():
        return "not a directory" if path.exists() else "no such directory"
    if not (path / "config.yaml").is_file():
        return "no config.yaml in it"
    if not ((path / "last.pt").is_file() or (path / "metrics.json").is_file()):
        return "neither last.pt nor metrics.json in it"
    return not_a_run_config(path / "config.yaml")


# What every config.yaml a run writes holds.
RUN_CONFIG_KEYS = ("model", "optimizer", "data", "trainer")


def not_a_run_config(path: Path) -> str | None:
    """Why the file is not the config.yaml of a run, or None when it is one."""
    import yaml

    try:
        saved = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        return f"its config.yaml cannot be read: {getattr(err, 'strerror', None) or err}"
    except yaml.YAMLError as err:
        return f"its config.yaml is not YAML: {str(err).splitlines()[0]}"
    if not isinstance(saved, dict):
        return f"its config.yaml holds {type(saved).__name__ if saved is not None else 'nothing'}, not a run's config"
    missing = [key for key in RUN_CONFIG_KEYS if key not in saved]
    if missing:
        return f"its config.yaml is not a run's config: no {', '.join(missing)}"
    return None


def run_dir(resume: str | None, new: str) -> str:
    """hydra.run.dir: with resume=<run dir> that run's own directory (refused unless a run wrote
    it), else a new one of its own."""
    if not resume:
        return claim(new)
    why = not_a_run(resume)
    if why is not None:
        raise ConfigError(
            f"Invalid resume: {str(resume)!r} ({why}); allowed: a run directory dltips wrote "
            "(its config.yaml and last.pt or metrics.json)"
        )
    return str(resume)


OmegaConf.register_new_resolver("dltips.run_dir", run_dir, replace=True, use_cache=True)
OmegaConf.register_new_resolver("dltips.claim", claim, replace=True, use_cache=True)


def record_dir(*, _root_) -> str | None:
    """hydra.output_subdir, read by Hydra just before it writes its .hydra/ record: the job's
    directory (hydra.runtime.output_dir, once Hydra has set it) is claimed first
    (dltips.config.claims), so a second process refused there writes nothing over the first's
    record. A resumed run keeps its own record: none is written."""
    output_dir = OmegaConf.select(_root_, "hydra.runtime.output_dir", default=None)
    if output_dir:
        hold(output_dir)
    return None if _root_.get("resume") else ".hydra"


OmegaConf.register_new_resolver("dltips.record_dir", record_dir, replace=True)
# SLURM jobs ask for a GPU only when the run is to use one: a GPU request is refused at once on a
# CPU-only partition (configs/hydra/launcher/slurm.yaml).
OmegaConf.register_new_resolver("dltips.gpus", lambda device: 1 if device == "cuda" else 0, replace=True)
