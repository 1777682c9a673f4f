"""Files that survive crashes: written whole or not at all (no torch: the SLURM launcher and
dltips-compare use it without loading torch)."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

# atomic_write's temporary files: ".last.pt.<12 hex digits>", ".metrics.json.<12 hex digits>".
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}$")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`:
    a reader never sees half a file, and a crash or a full disk mid-write leaves the previous
    version intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty file next to `path`, open for writing, with the mode any newly created file
    gets (0666 less the umask, or the directory's default ACL): the rename keeps it, and
    tempfile.mkstemp's 0600 would leave checkpoints and metrics.json unreadable to the group
    that can read every other file of the run. The umask is applied by the kernel, not read and
    restored with os.umask, which would race with files other threads create meanwhile."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:  # a 1 in 2⁴⁸ draw of a name in use: draw again
            continue


# What a training process keeps open besides its networks' files: torch, Python, the logs.
OPEN_FILES_ASIDE = 256


def allow_open_files(networks: int, per_network: int = 1) -> None:
    """Raise this process's soft limit on open files, up to its hard limit, so that `networks`
    trained together may each keep `per_network` files open (its run directory's .lock and its
    TensorBoard event file; its train.log too under the stacked launcher): the common default
    soft limit, 1,024, is reached by a stack of about 400."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = networks * per_network + OPEN_FILES_ASIDE
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(hard, wanted), hard))
