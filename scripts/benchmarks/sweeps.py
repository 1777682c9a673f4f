"""Whole sweeps as a user runs them: `dltips-train -m ...` with the basic launcher against the
same command with `hydra/launcher=stacked`, each a fresh process, the two interleaved.

The wall clock runs from launch to exit: process start, imports, composing every job's config,
training, every job's files and the sweep's summary. CPU time is the child's own (user + system,
from the kernel's account of waited-for children), blind to other processes on the machine.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .startup import child_env

LAUNCHERS = {"basic": (), "stacked": ("hydra/launcher=stacked",)}


@dataclass(frozen=True)
class Sweep:
    key: str  # short name for the targets
    name: str
    overrides: tuple[str, ...]  # what follows `dltips-train -m`
    goal: float | None = None  # stacked at least this many times faster than basic
    pairs: int = 3  # timed pairs in a full run (a quick run times one)

    @property
    def points(self) -> int:
        return math.prod(len(o.split("=", 1)[1].split(",")) for o in self.overrides)


SWEEPS = (
    Sweep(
        "digits, 16-point sweep",
        "4 learning rates × 4 seeds, digits MLP 64-128-128-10, 20 epochs",
        ("optimizer.lr=0.01,0.03,0.1,0.3", "seed=0,1,2,3", "trainer.max_epochs=20"),
        goal=3.0,
    ),
    Sweep(
        "digits, 64-point sweep",
        "4 learning rates × 4 seeds × 4 weight decays, digits MLP 64-128-128-10, 20 epochs",
        (
            "optimizer.lr=0.01,0.03,0.1,0.3",
            "seed=0,1,2,3",
            "regularizer.weight_decay=0,1e-4,1e-3,1e-2",
            "trainer.max_epochs=20",
        ),
        goal=3.0,
        pairs=2,  # the basic launcher takes about 40 s on 2 cores: the ratio is the done criterion
    ),
    Sweep(
        "MNIST-1D, 64-point sweep",
        "4 learning rates × 4 seeds × 4 weight decays, MNIST-1D MLP 40-128-128-10, 10 epochs",
        (
            "data=mnist1d",
            "optimizer.lr=0.01,0.03,0.1,0.3",
            "seed=0,1,2,3",
            "regularizer.weight_decay=0,1e-4,1e-3,1e-2",
            "trainer.max_epochs=10",
        ),
        pairs=2,  # about three minutes a pair on 2 cores
    ),
)
QUICK = (
    Sweep(
        "digits, 4-point sweep",
        "2 learning rates × 2 seeds, digits MLP, 3 epochs",
        ("optimizer.lr=0.03,0.1", "seed=0,1", "trainer.max_epochs=3"),
    ),
)


def command(sweep: Sweep, launcher: str, sweep_dir: Path) -> list[str]:
    """The `dltips-train -m` command line (`python -m dltips.train` runs the same entry point)."""
    extra = ("trainer.progress=log", f"hydra.sweep.dir={sweep_dir}")
    return [sys.executable, "-m", "dltips.train", "-m", *LAUNCHERS[launcher], *sweep.overrides, *extra]


def run_sweep(sweep: Sweep, launcher: str, sweep_dir: Path, pycache: Path) -> dict:
    """One timed sweep; raises if it fails or a job did not finish."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, launched = time.perf_counter(), time.time()  # the log's clock is the wall clock
    proc = subprocess.run(
        command(sweep, launcher, sweep_dir),
        capture_output=True,
        text=True,
        env=child_env(pycache, same_threads=False),  # as a user runs it: trainer.threads=auto on every core
        timeout=3600,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{launcher} sweep failed ({proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}")
    results, output = job_results(sweep_dir), proc.stdout + proc.stderr
    if len(results) != sweep.points or any(status not in ("completed", "diverged") for status, _ in results.values()):
        raise RuntimeError(f"{launcher} sweep: expected {sweep.points} finished jobs in {sweep_dir}, got {results}")
    return {
        "wall_s": wall,
        "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "phases": phases(output, launched, launched + wall),
        "stages": stages(output, launched, launched + wall),
        "set_up_s_per_job": set_up_per_job(output),
        "threads": switched_threads(output),
        "results": results,
    }


SWITCH = re.compile(r"torch threads: (\d+), not \d+")


def switched_threads(output: str) -> list[int]:
    """The torch thread counts the sweep's runs measured faster than the one they started on
    (dltips.engine.threads), in the order the log shows them; [] where none changed."""
    return [int(m[1]) for m in SWITCH.finditer(output)]


STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
PHASES = ("to the first run", "training", "summary and exit")
# The stacked launcher's, from its own lines: `#<n> : <overrides>` as each job's set-up starts,
# `training <n> jobs together` as each stack starts, `run directory` once it is built.
STAGES = ("start-up", "set-up", "building stacks", "training", "summary and exit")
JOB = re.compile(r"\]\s+#\d+ : ")
STACK = re.compile(r"\] (- )?training \d+ jobs together")
RESULT = re.compile(r"\] (- )?(completed|diverged): ")


def stamps(output: str) -> list[tuple[float, str]]:
    """(wall-clock time, line) of every time-stamped log line, in time order (a log's lines on
    stdout and stderr merge by their stamps: milliseconds)."""
    found = [(m.group(1), line) for line in output.splitlines() if (m := STAMP.match(line))]
    timed = [(datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f").timestamp(), line) for t, line in found]
    return sorted(timed, key=lambda stamped: stamped[0])  # stable: lines of one millisecond keep their order


def phases(output: str, launched: float, ended: float) -> dict[str, float] | None:
    """Seconds from launch to the first job's "run directory" line (imports, composing and
    setting up jobs: all of them for a stack, the first for the basic launcher), from there to
    the last job's result (the basic launcher sets up its other jobs in between), and then to
    exit (the sweep's summary, interpreter shutdown); None where the log does not show them."""
    stamped = stamps(output)
    first = next((t for t, line in stamped if "run directory: " in line), None)
    last = next((t for t, line in reversed(stamped) if RESULT.search(line)), None)
    if first is None or last is None:
        return None
    return dict(zip(PHASES, (first - launched, last - first, ended - last)))


def set_up_per_job(output: str) -> float | None:
    """Seconds per job the stacked launcher takes to set its jobs up: from the first job's
    `#<n> :` line to the first `training <n> jobs together`, over the jobs; None where the log
    does not show them (the basic launcher sets each job up just before it trains)."""
    stamped = stamps(output)
    jobs = [t for t, line in stamped if JOB.search(line)]
    stack = next((t for t, line in stamped if STACK.search(line)), None)
    return (stack - jobs[0]) / len(jobs) if jobs and stack is not None else None


def stages(output: str, launched: float, ended: float) -> dict[str, float] | None:
    """A stacked sweep's STAGES in seconds: launch to the first job's set-up (imports, Hydra's
    sweep config), setting up every job, building each stack (its networks, data and files:
    `training … together` to its first `run directory`), training (the rest, up to the last
    job's result) and the sweep's summary and exit; None where the log does not show them."""
    stamped = stamps(output)
    jobs = [t for t, line in stamped if JOB.search(line)]
    stacks = [i for i, (_, line) in enumerate(stamped) if STACK.search(line)]
    last = next((t for t, line in reversed(stamped) if RESULT.search(line)), None)
    if not jobs or not stacks or last is None:
        return None
    built = 0.0
    for i in stacks:
        ready = next((t for t, line in stamped[i:] if "run directory: " in line), None)
        if ready is None:
            return None
        built += ready - stamped[i][0]
    first = stamped[stacks[0]][0]
    return dict(zip(STAGES, (jobs[0] - launched, first - jobs[0], built, last - first - built, ended - last)))


def job_results(sweep_dir: Path) -> dict[str, tuple[str, float | None]]:
    """Each job's (status, val/acc) by its directory's name."""
    found = {}
    for path in sorted(sweep_dir.glob("*/metrics.json")):
        report = json.loads(path.read_text())
        found[path.parent.name] = (report["status"], report["metrics"].get("val/acc"))
    return found


def largest_difference(a: dict, b: dict) -> float:
    """The largest |Δ val/acc| between the same jobs of two sweeps (a diverged job counts 0 if
    both diverged, ∞ if only one did)."""
    diffs = [
        0.0 if va is None and vb is None else math.inf if None in (va, vb) else abs(va - vb)
        for (_, va), (_, vb) in zip(a.values(), b.values())
    ]
    return max(diffs) if a.keys() == b.keys() else math.inf


def bench_sweep(sweep: Sweep, scratch: Path, repeats: int, pycache: Path, log=print) -> dict:
    """`repeats` interleaved pairs (order alternating) of the sweep with each launcher, after
    one untimed 2-job sweep each (bytecode, data set and file caches)."""
    data = tuple(o for o in sweep.overrides if o.startswith("data="))
    warm = Sweep("warm-up", "", (*data, "seed=0,1", "trainer.max_epochs=1"))
    for launcher in LAUNCHERS:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            run_sweep(warm, launcher, Path(tmp) / "sweep", pycache)
    runs: dict[str, list[dict]] = {launcher: [] for launcher in LAUNCHERS}
    for r in range(repeats):
        for launcher in list(LAUNCHERS) if r % 2 == 0 else list(LAUNCHERS)[::-1]:
            with tempfile.TemporaryDirectory(dir=scratch) as tmp:
                runs[launcher].append(run_sweep(sweep, launcher, Path(tmp) / "sweep", pycache))
        log(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{v} {runs[v][-1]['wall_s']:.1f} s" for v in LAUNCHERS))
    differences = [largest_difference(b["results"], s["results"]) for b, s in zip(runs["basic"], runs["stacked"])]
    equal = [
        sum(b["results"][job] == s["results"].get(job) for job in b["results"])
        for b, s in zip(runs["basic"], runs["stacked"])
    ]
    for rs in runs.values():
        for run in rs:
            del run["results"]  # kept: their largest difference
    return {
        "key": sweep.key,
        "name": sweep.name,
        "points": sweep.points,
        "goal": sweep.goal,
        "command": "dltips-train -m " + " ".join(sweep.overrides),
        "max_val_acc_difference": max(differences),
        "equal_jobs": min(equal),  # jobs whose status and val/acc are the same with both launchers
        "runs": runs,
    }
