"""How fast dltips trains: its loop against plain PyTorch loops, same model, data and steps.

Variants, all in one process: `dltips` (train(cfg), default logging), `hand` (randperm + X[idx],
the floor), `dataloader` (DataLoader over a TensorDataset), `lightning` (when installed), and
`dltips_diagnostics` (train(cfg) with diagnostics=true). They are timed the same way, from
inside: a global optimizer post-step hook stamps every step (`StepClock`), so no loop needs
changing and per-run setup, per-epoch work and the steps themselves come apart. Ensemble mode
(`trainer.ensemble=K`) is timed against the same K runs one after another.
"""
from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from dltips.bench.ensemble import bench_ensemble
from dltips.bench.loops import (
    LABELS, WORKLOADS, Case, Workload, dataloader_loop, hand_written, lightning_fit, lightning_module, make_case, runner,
)  # fmt: skip
from dltips.bench.report import paired, render, targets, write
from dltips.bench.startup import STARTUP_CHILDREN, parse_marks, time_startup
from dltips.bench.timing import Run, StepClock, bench_workload, gemm_rate, per_step, time_run

__all__ = [
    "LABELS", "WORKLOADS", "Case", "Run", "StepClock", "Workload", "bench_ensemble", "bench_workload", "benchmark",
    "dataloader_loop", "gemm_rate", "hand_written", "lightning_fit", "make_case", "paired", "parse_marks", "per_step",
    "render", "runner", "targets", "time_run", "time_startup", "write",
]  # fmt: skip


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


def load_average() -> tuple[float, ...] | None:
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def machine() -> dict:
    L = lightning_module()
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "lightning": getattr(L, "__version__", "?") if L else None,
        "load_average": load_average(),
    }


def benchmark(
    out: Path, quick: bool = False, workloads=WORKLOADS, startup: bool = True, ensemble: int | None = 16, log=print
) -> dict:
    """The whole benchmark in this process; returns the raw report (render() makes BENCH.md)."""
    out.mkdir(parents=True, exist_ok=True)
    repeats, target_s, budget_s = (2, 0.05, 8.0) if quick else (5, 0.4, 50.0)
    report = {"quick": quick, "repeats": repeats, "machine": machine(), "workloads": [], "startup": {}, "ensemble": []}
    began, say = time.perf_counter(), log

    def log(msg: str) -> None:
        say(f"[{time.perf_counter() - began:5.1f} s] {msg}")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory(dir=out, prefix=".scratch-") as tmp:
        scratch = Path(tmp)
        rates = [gemm_rate(repeats=2 if quick else 3, device=device)]
        for workload in workloads:
            log(f"{workload.name}")
            report["workloads"].append(bench_workload(workload, scratch, repeats, target_s, not quick, budget_s, log))
        if ensemble:
            epochs, pairs = (3, 1) if quick else (20, 3)
            # At the defaults (last.pt every epoch), and with one checkpoint at the end: the
            # members' per-epoch checkpoints cost the same as the runs' and dilute the gain.
            for overrides in ((), (f"trainer.checkpoint_every_n_epochs={epochs}",)):
                log(f"ensemble mode: {ensemble} members against {ensemble} runs one after another {' '.join(overrides)}")
                report["ensemble"].append(bench_ensemble(scratch, ensemble, epochs, pairs, overrides, log))
        rates.append(gemm_rate(repeats=2 if quick else 3, device=device))  # before and after: take the best
        report["gemm_flops"] = max(rates)
        if startup:
            log("startup")
            for i in range(1 if quick else 2):  # quick: the command only, not the floor
                for name in STARTUP_CHILDREN if not quick else ["dltips-train"]:
                    report["startup"].setdefault(name, []).append(time_startup(name, scratch / f"startup{i}"))
    report["machine"]["load_average_end"] = load_average()
    return report

