"""Reproduce the lecture: run every experiment on the bundled digits, measure each claim,
and write REPORT.md with numbers (mean ± std over seeds), a figure and a verdict per claim.

Each verdict rule is written down next to its claim, before any number is seen, and is
reported as measured: a claim that does not hold on digits says so.
"""
from __future__ import annotations

import time
from pathlib import Path

from dltips.lecture.lab import Lab, write_report
from dltips.lecture.studies import STUDIES


def reproduce(root: Path | str = "outputs/lecture", quick: bool = False, only: list[str] | None = None) -> Path:
    """Run the studies (all, or those named in `only`) and write REPORT.md; returns its path."""
    lab = Lab(Path(root), quick=quick, seeds=1 if quick else 3)
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
