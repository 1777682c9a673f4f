"""Reproduce the lecture: run every experiment on data where its claim's condition holds
(digits, MNIST-1D, a 5,000-digit MNIST subset, the wine and breast-cancer tables), measure each
claim, and write REPORT.md with numbers (mean ± 95% t-interval over seeds, differences paired by
seed), the published number, a figure and a verdict per claim.

Each verdict rule is written down next to its claim, with the result that would have made it
fail, and is reported as measured: a claim that does not hold says so. Where a claim's data,
rule or setting changed after a first result, its section says what changed and why.
"""

from __future__ import annotations

import time
from pathlib import Path

from lecture.lab import Lab, default_root, write_report
from lecture.studies import STUDIES

SEEDS = 5  # per variant in the full reproduction; --quick runs 2


def reproduce(root: Path | str | None = None, quick: bool = False, only: list[str] | None = None) -> Path:
    """Run the studies (all, or those named in `only`) and write REPORT.md under `root`
    (default: outputs/lecture, or outputs/lecture-quick for a quick run); returns its path."""
    lab = Lab(Path(root) if root is not None else default_root(quick), quick=quick, seeds=2 if quick else SEEDS)
    started = time.perf_counter()
    sections = []
    for name, study in STUDIES.items():
        if only and name not in only:
            continue
        print(f"{name} ...", flush=True)
        result = study(lab)
        sections += result if isinstance(result, list) else [result]
    report = write_report(lab, sections, time.perf_counter() - started)
    print(f"\nreport: {report}\ntensorboard: uv run tensorboard --logdir {lab.runs_dir}")
    return report
