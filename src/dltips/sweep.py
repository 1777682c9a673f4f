"""What a finished multirun leaves behind: summary.csv, summary.md and curves.png in the sweep
directory, and a non-zero exit when any job failed (each failure is kept in its job's directory)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dltips.compare import summarize

log = logging.getLogger("dltips")


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = summarize(sweep_dir)
        log.info("sweep summary: %s", sweep_dir / "summary.md")
        failed = [row["run"] for row in rows if row["status"] == "failed"]
        if failed:
            raise SystemExit(f"{len(failed)} of {len(rows)} jobs failed: {', '.join(failed)} (see error.txt in each)")
