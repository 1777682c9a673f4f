"""A run directory while a run owns it: one process at a time, and nothing left from attempts
that were killed.

The lock (dltips.config.claims) is taken before anything of the run is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from omegaconf import OmegaConf

from dltips.config import claims
from dltips.run import report
from dltips.run.files import TEMPORARY

log = logging.getLogger("dltips")


@contextmanager
def owned(*run_dirs: Path) -> Iterator[None]:
    """Hold the run directories for this process; a second process gets a one-line error."""
    with ExitStack() as stack:
        for run_dir in run_dirs:
            stack.enter_context(lock(run_dir))
        remove_temporaries(*run_dirs)  # only now: a writer holding the lock may still be renaming
        yield


@contextmanager
def lock(run_dir: Path) -> Iterator[None]:
    """Hold the directory's lock while the block runs: the claim Hydra's config made for this
    job (dltips.config.claims), or a new one."""
    fd = claims.take(run_dir)
    if fd is None:
        fd = claims.lock_file(run_dir)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock


def remove_temporaries(*run_dirs: Path) -> None:
    """Half-written checkpoints of a process killed while writing (the complete file they were
    to replace is still there)."""
    for run_dir in run_dirs:
        for path in run_dir.glob(".*"):
            if TEMPORARY.match(path.name):
                path.unlink(missing_ok=True)


def attempt_to_redo(run_dir: Path) -> str:
    """A sweep job re-run into a directory an earlier attempt left unfinished: "resume" when
    that attempt wrote a checkpoint to go on from, "restart" when it did not (its event files,
    which would show its steps next to the new ones, are removed), "" for a fresh directory."""
    if (run_dir / "last.pt").is_file() and (run_dir / "config.yaml").is_file():
        return "resume"
    stale = list(run_dir.glob("events.out.tfevents.*"))
    for path in stale:
        path.unlink()
    return "restart" if stale else ""


def finished_value(run_dir: Path) -> float | None:
    """A sweep job re-run in its own directory: its val/acc when it finished before (completed
    or diverged: NaN), so that it is skipped; None when it is to be trained."""
    ended = report.finished(run_dir)
    if ended is None:
        return None
    log.info("already %s, skipped: %s", ended["status"], run_dir)
    return report.objective(ended)


def redo(cfg, run_dir: Path):
    """A sweep job an earlier attempt left unfinished (killed, interrupted, failed) in `run_dir`
    goes on from its last.pt: the config with `resume` set to it (else the config itself)."""
    if attempt_to_redo(run_dir) != "resume":
        return cfg
    log.info("resuming the earlier attempt of this job from its last.pt: %s", run_dir)
    return OmegaConf.merge(cfg, {"resume": str(run_dir)})
