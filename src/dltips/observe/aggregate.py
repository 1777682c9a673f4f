"""A sweep's settings as TensorBoard runs of their own: the mean over a setting's seeds of
train/loss, val/loss and val/acc, with its 95% interval as a CUSTOM SCALARS margin chart.

TensorBoard draws one line per run and has no notion of seeds (tensorflow/tensorboard#376), so a
sweep that trains more than one seed per setting writes, when it ends, one run per setting under
`<sweep>/~mean/<setting>` (`~mean/activation=relu,lr=0.1`). "~" sorts after the job directories;
the run filter `^~mean` shows the means alone, `^[^~]` the seeds alone. The mean keeps the
curve's own tag, so in SCALARS it is drawn on the same chart as the seeds it averages. Each step
is averaged over the seeds that all reached it (an early-stopped seed ends its setting's curve).

The directory is rewritten whole when the sweep ends again (a re-run that finished more points).
Its event files are not named events.out.tfevents.*: they hold no run of their own for
dltips-compare.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dltips.config.plan import Plan
from dltips.observe.compare import find_runs, read_overrides, read_scalars
from dltips.observe.intervals import LEVEL, mean_ci_curves
from dltips.observe.tags import TRAIN_LOSS
from dltips.run import report

DIR = "~mean"
FILE = "mean.tfevents"
CURVES = (TRAIN_LOSS, "val/loss", "val/acc")
SEEDS_ONLY = "seeds"  # the setting's name in a sweep over seeds alone
CATEGORY = f"mean over seeds ± {LEVEL:.0%} interval"


def lower(tag: str) -> str:
    return f"~interval/{tag}/lower"


def upper(tag: str) -> str:
    return f"~interval/{tag}/upper"


def settings(sweep_dir: Path, plan: Plan) -> dict[str, list[Path]]:
    """Setting name -> the completed runs of the sweep in it."""
    out: dict[str, list[Path]] = {}
    for run in find_runs(sweep_dir):
        recorded = report.read(run)
        if recorded is not None and recorded["status"] == report.COMPLETED:
            out.setdefault(plan.setting(read_overrides(run)) or SEEDS_ONLY, []).append(run)
    return out


def mean_curves(runs: list[Path]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """tag -> (steps, mean, half-width) over the steps every run logged."""
    scalars = [read_scalars(run) for run in runs]
    out = {}
    for tag in CURVES:
        series = [dict(s.get(tag, [])) for s in scalars]
        steps = sorted(set.intersection(*(set(points) for points in series)))
        if steps:
            mean, half = mean_ci_curves(np.array([[points[step] for step in steps] for points in series]))
            out[tag] = (np.array(steps), mean, half)
    return out


def layout() -> dict:
    """The margin charts (SummaryWriter.add_custom_scalars): every aggregate run writes the same
    one, and TensorBoard merges equal charts into one."""
    return {CATEGORY: {tag: ["Margin", [tag, lower(tag), upper(tag)]] for tag in CURVES}}


def write_means(sweep_dir: Path | str) -> list[Path]:
    """The sweep's aggregate runs, one per setting with more than one completed seed; returns
    their directories (none: a sweep without seeds, whose `~mean` is removed if it had one)."""
    from dltips.observe.writer import log_scalars, open_writer

    sweep_dir = Path(sweep_dir)
    plan = Plan.load(sweep_dir)
    groups = {name: runs for name, runs in settings(sweep_dir, plan).items() if len(runs) > 1} if plan else {}
    with tempfile.TemporaryDirectory(dir=sweep_dir, prefix=".mean-") as tmp:
        for name, runs in groups.items():
            out = Path(tmp) / DIR / name
            writer = open_writer(out)
            writer.add_custom_scalars(layout())
            # Every tag of a step in one event, as a run logs them: one add_scalar per value (a
            # thousand per setting) made the means most of a sweep's summary time.
            at: dict[int, dict[str, float]] = {}
            for tag, (steps, mean, half) in mean_curves(runs).items():
                for step, m, h in zip(steps.tolist(), mean.tolist(), half.tolist()):
                    at.setdefault(step, {}).update({tag: m, lower(tag): m - h, upper(tag): m + h})
            for step in sorted(at):
                log_scalars(writer, at[step], step)
            writer.add_text("runs", "\n".join(f"- {run.relative_to(sweep_dir)}" for run in runs))
            writer.close()
            for written in out.glob("events.out.tfevents.*"):
                written.rename(out / FILE)
        replace(Path(tmp) / DIR, sweep_dir / DIR)
    return [sweep_dir / DIR / name for name in groups]


def replace(new: Path, old: Path) -> None:
    """`old` becomes `new` (or goes, when there is no `new`)."""
    if old.exists():
        trash = old.with_name(f".{old.name}-old-{os.getpid()}")
        old.rename(trash)
        shutil.rmtree(trash)
    if new.exists():
        new.rename(old)
