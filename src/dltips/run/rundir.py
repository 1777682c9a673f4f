"""A run directory while a run owns it: one process at a time, and nothing left from attempts
that were killed.

The lock is an flock on `<run>/.lock`: the kernel drops it when the process ends however it
ends (kill -9 included), so a stale lock never blocks a resume.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from omegaconf import OmegaConf

from dltips.config.errors import ConfigError
from dltips.run import report
from dltips.run.files import TEMPORARY

log = logging.getLogger("dltips")

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

LOCK = ".lock"


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
    if fcntl is None:
        yield
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:  # under a file, somewhere unwritable: nothing of the run is written yet
        raise ConfigError(
            f"Invalid output_dir: {str(run_dir)!r} cannot be written ({err.strerror}); allowed: a writable directory"
        ) from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise ConfigError(
                f"Invalid output_dir: {str(run_dir)!r} is in use by another process (pid {holder}); "
                "allowed: a run directory no process is training in"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
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


def finished_value(cfg) -> float | None:
    """A sweep job re-run in its own directory: its val/acc when it finished before (completed
    or diverged: NaN), so that it is skipped; None when it is to be trained."""
    ended = report.finished(Path(cfg.output_dir))
    if ended is None:
        return None
    log.info("already %s, skipped: %s", ended["status"], cfg.output_dir)
    return report.objective(ended)


def redo(cfg):
    """A sweep job an earlier attempt left unfinished (killed, interrupted, failed) goes on from
    its last.pt: the config with `resume` set to its directory (else the config itself)."""
    run_dir = Path(cfg.output_dir)
    if attempt_to_redo(run_dir) != "resume":
        return cfg
    log.info("resuming the earlier attempt of this job from its last.pt: %s", run_dir)
    return OmegaConf.merge(cfg, {"resume": str(run_dir)})
