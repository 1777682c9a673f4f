"""Reproduce the lecture: run every experiment on data where its claim's condition holds
(digits, MNIST-1D, a 5,000-digit MNIST subset, the wine and breast-cancer tables), measure each
claim, and write REPORT.md with numbers (mean ± 95% t-interval over seeds, differences paired by
seed), the published number, a figure and a verdict per claim.

Each verdict rule is written down next to its claim, with the result that would have made it
fail, and is reported as measured: a claim that does not hold says so. Where a claim's data,
rule or setting changed after a first result, its section says what changed and why.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lecture.lab import Lab, Section, default_root, write_report
from lecture.studies import STUDIES

SEEDS = 5  # per variant in the full reproduction; --quick runs 2
# Side by side, the longest studies start first and the short ones fill in behind them: started
# last, a long one would keep one core busy after the other has run out of work.
LONGEST = ("keras_demo_deep", "keras_demo", "dropout_ensemble", "activations", "normalization", "vanishing_gradient")


def reproduce(
    root: Path | str | None = None, quick: bool = False, only: list[str] | None = None, workers: int | None = None
) -> Path:
    """Run the studies (all, or those named in `only`) and write REPORT.md under `root`
    (default: outputs/lecture, or outputs/lecture-quick for a quick run); returns its path.
    The studies are independent (each its own runs and figures) and train on one torch thread:
    `workers` of them (default: one per core this process may use) run side by side, each in
    a process of its own."""
    lab = Lab(Path(root) if root is not None else default_root(quick), quick=quick, seeds=2 if quick else SEEDS)
    names = [name for name in STUDIES if not only or name in only]
    workers = max(1, min(len(names), workers or len(os.sched_getaffinity(0))))
    started = time.perf_counter()
    if workers > 1:  # spawned, not forked: a fork of a process that has run torch can hang
        context = multiprocessing.get_context("spawn")
        first = sorted(names, key=lambda n: LONGEST.index(n) if n in LONGEST else len(LONGEST))
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            done = dict(zip(first, pool.map(run_study, [lab] * len(first), first)))
        results = [done[name] for name in names]  # the report keeps the studies' own order
    else:
        results = [run_study(lab, name) for name in names]
    sections = [section for found, _ in results for section in found]
    times = {name: seconds for name, (_, seconds) in zip(names, results)}
    report = write_report(lab, sections, time.perf_counter() - started, times, workers)
    print(f"\nreport: {report}\ntensorboard: uv run tensorboard --logdir {lab.runs_dir}")
    return report


def run_study(lab: Lab, name: str) -> tuple[list[Section], float]:
    """One study's sections and its own seconds."""
    print(f"{name} ...", flush=True)
    started = time.perf_counter()
    result = STUDIES[name](lab)
    return (result if isinstance(result, list) else [result]), time.perf_counter() - started
