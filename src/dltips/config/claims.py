"""Run directories claimed while Hydra resolves a job's config: the job's lock is taken before
Hydra writes its `.hydra/` record there, and handed to the run (dltips.run.rundir.owned).

The lock is an flock on `<run>/.lock`: the kernel drops it when the process ends however it
ends (kill -9 included), so a stale lock never blocks a resume. Two open files of one process
conflict as two processes do, so a claim is handed over, not taken twice.
"""

from __future__ import annotations

import os
from pathlib import Path

from dltips.config.errors import ConfigError

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

LOCK = ".lock"
# The claims this process holds and has not handed over yet: run directory -> the lock file's fd.
held: dict[str, int] = {}


def hold(run_dir: str | Path) -> None:
    """Claim the directory for this job (once: a second claim of it is a no-op)."""
    key = str(Path(run_dir).resolve())
    if key not in held:
        fd = lock_file(Path(run_dir))
        if fd is not None:
            held[key] = fd


def take(run_dir: str | Path) -> int | None:
    """The claim's lock file, handed over to the caller (who closes it), if this job holds one."""
    return held.pop(str(Path(run_dir).resolve()), None)


def release(run_dir: str | Path) -> None:
    """Drop a claim the job did not hand over (it ended before training)."""
    fd = take(run_dir)
    if fd is not None:
        os.close(fd)


def lock_file(run_dir: Path) -> int | None:
    """An open file holding the directory's lock (None where files cannot be locked); another
    holder is a one-line error naming its pid."""
    if fcntl is None:
        return None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:  # under a file, somewhere unwritable: nothing of the run is written yet
        raise ConfigError(
            f"Invalid output_dir: {str(run_dir)!r} cannot be written ({err.strerror}); allowed: a writable directory"
        ) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"Invalid output_dir: {str(run_dir)!r} is in use by another process (pid {holder}); "
            "allowed: a run directory no process is training in"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
