"""Where a run ran: environment.json, a flat record of the code (git commit, whether the tree was
dirty and a hash of its diff, a hash of uv.lock), the software (Python, torch, CUDA, cuDNN), the
hardware (CPU or GPU model), the thread count and the determinism settings.

Two runs that disagree can then be told apart by more than their configs (`dltips-compare --diff
RUN_A RUN_B`). The code and software part is the same for every run of a process and is looked
up once (git costs a few milliseconds; a stacked sweep starts hundreds of runs). A resumed run
records the environment it resumed in, and says so when it differs from the one before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

from dltips.run.files import atomic_write

FILE = "environment.json"
log = logging.getLogger("dltips")
UNKNOWN = "unknown"


def path(run_dir: Path) -> Path:
    return Path(run_dir) / FILE


def git(source: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=source, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):  # no git here
        return None
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def code() -> dict[str, str | bool]:
    """The code that runs: dltips' own source tree (an installed wheel is in no git tree)."""
    return code_at(Path(__file__).resolve().parents[1])  # …/dltips/run/environment.py -> …/dltips


def code_at(source: Path) -> dict[str, str | bool]:
    """The git commit of the tree holding `source`, whether its tracked files differ from it
    (and a hash of that diff), and a hash of the tree's uv.lock."""
    top = git(source, "rev-parse", "--show-toplevel")
    if top is None:
        return {"git_commit": UNKNOWN, "git_dirty": False, "git_diff": "", "uv_lock": UNKNOWN}
    root = Path(top.strip())
    diff = (git(root, "diff", "HEAD") or "").encode()
    lock = root / "uv.lock"
    return {
        "git_commit": (git(root, "rev-parse", "HEAD") or UNKNOWN).strip(),
        "git_dirty": bool(diff),
        "git_diff": digest(diff) if diff else "",
        "uv_lock": digest(lock.read_bytes()) if lock.is_file() else UNKNOWN,
    }


@functools.lru_cache(maxsize=1)
def software() -> dict[str, str]:
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "cudnn": str(cudnn) if cudnn else "none",
        "platform": platform.platform(),
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count() or 0,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def current(device) -> dict:
    """The record of a run training on `device` (a torch.device) now."""
    import torch

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
    return {
        **code(),
        **software(),
        "device": str(device),
        "gpu": gpu,
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "argv": " ".join(sys.argv),
    }


def read(run_dir: Path) -> dict | None:
    """A run's record; None for runs written before it was kept, or one that cannot be read."""
    try:
        record = json.loads(path(run_dir).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def record(run_dir: Path, device) -> dict:
    """Write the run's environment.json; a resumed run whose code or software changed says what."""
    now, before = current(device), read(run_dir)
    if before is not None:
        changed = [k for k in now if k not in ("argv", "threads") and k in before and before[k] != now[k]]
        if changed:
            log.warning(
                "resumed in another environment: %s",
                ", ".join(f"{k} {before[k]} -> {now[k]}" for k in changed),
            )
    atomic_write(path(run_dir), lambda f: f.write((json.dumps(now, indent=1) + "\n").encode()))
    return now


def summary(env: dict) -> str:
    """The start line's account: `commit 1a2b3c4 (dirty), torch 2.5.1, cpu: 1 thread`."""
    commit = env["git_commit"][:7] + (" (dirty)" if env["git_dirty"] else "")
    where = env["gpu"] if env["gpu"] != "none" else f"cpu: {env['threads']} thread{'s' * (env['threads'] != 1)}"
    return f"commit {commit}, torch {env['torch']}, {where}"
