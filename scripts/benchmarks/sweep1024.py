"""A 1,024-point digits sweep run whole on this machine with `hydra/launcher=stacked`: one fresh
`dltips-train -m` process, timed from launch to exit and split into the stacked launcher's stages
(sweeps.STAGES). The basic launcher is not run (about half an hour on 2 cores); its time is
estimated from the 64-point digits sweep (tables.sweep1024_table).

Stacks of up to 256: a member-step costs about the same from K = 64 to 256 and no less at 1,024
(the K curve, members.py), and each member of a stack keeps about two files open (its train.log
and its TensorBoard event file), so a stack of 1,024 would pass the common limit of 1,024 open
files (`ulimit -n`) where 256 stays well under it.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

from .sweeps import LAUNCHERS, Sweep, run_sweep

SWEEP = Sweep(
    "digits, 1,024-point sweep",
    "8 learning rates × 8 weight decays × 16 seeds, digits MLP 64-128-128-10, 5 epochs, stacks of up to 256",
    (
        "optimizer.lr=0.003,0.005,0.01,0.02,0.03,0.05,0.1,0.3",
        "regularizer.weight_decay=0,1e-5,3e-5,1e-4,3e-4,1e-3,3e-3,1e-2",
        "seed=" + ",".join(str(seed) for seed in range(16)),
        "trainer.max_epochs=5",
        "hydra.launcher.max_members=256",
    ),
)
QUICK = Sweep(
    "digits, 16-point sweep in stacks of 8",
    "2 learning rates × 2 weight decays × 4 seeds, digits MLP, 2 epochs, stacks of up to 8",
    (
        "optimizer.lr=0.03,0.1",
        "regularizer.weight_decay=0,1e-4",
        "seed=0,1,2,3",
        "trainer.max_epochs=2",
        "hydra.launcher.max_members=8",
    ),
)
ESTIMATED_FROM = "digits, 64-point sweep"  # the sweeps part's, for the basic launcher's estimate


def bench_sweep1024(sweep: Sweep, scratch: Path, pycache: Path, warm: bool = True, log=print) -> dict:
    """The sweep once with the stacked launcher, after one untimed 2-job sweep (bytecode, data
    set and file caches) unless `warm` is false."""
    data = tuple(o for o in sweep.overrides if o.startswith("data="))
    if warm:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            run_sweep(
                Sweep("warm-up", "", (*data, "seed=0,1", "trainer.max_epochs=1")),
                "stacked",
                Path(tmp) / "sweep",
                pycache,
            )
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        run = run_sweep(sweep, "stacked", Path(tmp) / "sweep", pycache)
    statuses = collections.Counter(status for status, _ in run.pop("results").values())
    log(f"  stacked {run['wall_s']:.1f} s, {sweep.points / run['wall_s']:.1f} jobs per second")
    return {
        "key": sweep.key,
        "name": sweep.name,
        "points": sweep.points,
        "command": "dltips-train -m " + " ".join((*LAUNCHERS["stacked"], *sweep.overrides)),
        "statuses": dict(statuses),
        "estimated_from": ESTIMATED_FROM,
        "run": run,
    }
