"""A run's metrics.json: its status and final metrics. The one module that reads or writes it.

    {"status": "completed", "message": "", "metrics": {"test/acc": 0.96, ...}, "time_s": 4.2, ...}

The status says how the run ended: COMPLETED or DIVERGED (finished: a sweep re-run skips it),
INTERRUPTED (a signal; last.pt says where to go on), FAILED (an error, with error.txt beside
it), CANCELLED (SLURM ended the job before the run could say). NaN and infinities, a missing
metric, are written as null: JSON has no NaN. No torch here: the SLURM launcher, dltips-compare
and the sweep summary read reports without it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dltips.run.files import atomic_write

NAME = "metrics.json"
COMPLETED, DIVERGED, INTERRUPTED, FAILED, CANCELLED = "completed", "diverged", "interrupted", "failed", "cancelled"
FINISHED = (COMPLETED, DIVERGED)  # ended on its own: nothing left to train
STATUSES = (COMPLETED, DIVERGED, INTERRUPTED, FAILED, CANCELLED)
# What a reader gets for a metrics.json it cannot parse (a truncated file, another program's).
UNREADABLE = "unreadable"


def path(run_dir: Path) -> Path:
    return Path(run_dir) / NAME


def write(run_dir: Path, status: str, message: str = "", metrics: dict | None = None, **extra) -> dict:
    """Write the run's report atomically; returns it."""
    if status not in STATUSES:
        raise ValueError(f"Invalid status: {status!r}; allowed: {', '.join(STATUSES)}")
    report = {"status": status, "message": message, "metrics": metrics or {}, **extra}
    text = json.dumps(finite(report), indent=2, sort_keys=True, allow_nan=False)
    atomic_write(path(run_dir), lambda f: f.write(text.encode()))
    return report


def read(run_dir: Path) -> dict | None:
    """The run's report; None when it has none. One that cannot be parsed reads as status
    UNREADABLE with the reason as its message: a reader lists it instead of failing."""
    try:
        text = path(run_dir).read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        return {"status": UNREADABLE, "message": f"{path(run_dir)} cannot be read: {err.strerror}", "metrics": {}}
    try:
        report = json.loads(text)
    except ValueError as err:
        report = err
    if not isinstance(report, dict) or not isinstance(report.get("status"), str):
        why = f"not JSON ({report})" if isinstance(report, ValueError) else "no status in it"
        return {"status": UNREADABLE, "message": f"{path(run_dir)} cannot be read: {why}", "metrics": {}}
    report.setdefault("metrics", {})
    report["metrics"] = report["metrics"] or {}
    return report


def finished(run_dir: Path) -> dict | None:
    """The report of a run that ended on its own (completed or diverged), else None."""
    report = read(run_dir)
    return report if report is not None and report["status"] in FINISHED else None


def objective(report: dict) -> float:
    """A finished run's val/acc (NaN when it diverged): the value a sweep job returns."""
    value = report["metrics"].get("val/acc")
    return math.nan if value is None else float(value)


def finite(data):
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data
