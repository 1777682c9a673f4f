"""How fast dltips trains: its loop against plain PyTorch loops, same model, data and steps;
stacked networks against the same networks one after another; whole sweeps by launcher; the
cost of a member-step as the stack grows; a 1,024-point sweep run whole.

Variants, all in one process: `dltips` (train(cfg), default logging), `hand` (randperm + X[idx],
the floor), `dataloader` (DataLoader over a TensorDataset), `lightning` (when installed), and
`dltips_diagnostics` (train(cfg) with diagnostics=true). They are timed the same way, from
inside: a global optimizer post-step hook stamps every step (`StepClock`), so no loop needs
changing and per-run setup, per-epoch work and the steps themselves come apart. K seeds stacked
(`trainer.seeds=K`) are timed against the same K runs one after another, and whole
`dltips-train -m` sweeps (fresh processes) with `hydra/launcher=stacked` against the basic
launcher. Tooling only: the library never imports it.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from . import sweep1024
from .loops import (
    LABELS,
    WORKLOADS,
    Case,
    Workload,
    dataloader_loop,
    hand_written,
    lightning_fit,
    lightning_module,
    make_case,
    runner,
)
from .members import CURVE, QUICK_CURVE, bench_members
from .report import render, targets, write
from .seeds import bench_seeds
from .startup import STARTUP_CHILDREN, child_env, parse_marks, time_startup
from .sweep1024 import bench_sweep1024
from .sweeps import QUICK, SWEEPS, Sweep, bench_sweep
from .tables import paired
from .timing import Run, StepClock, bench_workload, gemm_rate, per_step, time_run

__all__ = [
    "CURVE",
    "LABELS",
    "PARTS",
    "QUICK",
    "QUICK_CURVE",
    "QUICK_PARTS",
    "SWEEPS",
    "WORKLOADS",
    "Case",
    "Run",
    "StepClock",
    "Sweep",
    "Workload",
    "bench_members",
    "bench_seeds",
    "bench_sweep",
    "bench_sweep1024",
    "bench_workload",
    "benchmark",
    "child_env",
    "dataloader_loop",
    "gemm_rate",
    "hand_written",
    "lightning_fit",
    "make_case",
    "paired",
    "parse_marks",
    "per_step",
    "render",
    "runner",
    "targets",
    "time_run",
    "time_startup",
    "write",
]

PARTS = ("loops", "seeds", "members", "sweeps", "sweep1024", "startup")
QUICK_PARTS = tuple(p for p in PARTS if p != "sweep1024")  # --quick runs it only when asked (--only)


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
    out: Path,
    quick: bool = False,
    parts=PARTS,
    workloads=WORKLOADS,
    sweeps: tuple[Sweep, ...] | None = None,
    seeds: int = 16,
    log=print,
) -> dict:
    """The benchmark's `parts` (PARTS); returns the raw report (render() makes BENCH.md)."""
    out.mkdir(parents=True, exist_ok=True)
    repeats, target_s, budget_s = (2, 0.05, 8.0) if quick else (5, 0.4, 50.0)
    report = {
        "quick": quick,
        "parts": list(parts),
        "repeats": repeats,
        "machine": machine(),
        "workloads": [],
        "startup": {},
        "seeds": [],
        "sweeps": [],
        "members": None,
        "sweep1024": None,
    }
    began, say = time.perf_counter(), log

    def log(msg: str) -> None:
        say(f"[{time.perf_counter() - began:5.1f} s] {msg}")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory(dir=out, prefix=".scratch-") as tmp:
        scratch = Path(tmp)
        pycache = scratch / "pycache"  # the child processes' bytecode, where the environment turns caching off
        rates = [gemm_rate(repeats=2 if quick else 3, device=device)]
        for workload in workloads if "loops" in parts else ():
            log(f"{workload.name}")
            report["workloads"].append(bench_workload(workload, scratch, repeats, target_s, not quick, budget_s, log))
        if "seeds" in parts:
            epochs, pairs = (3, 1) if quick else (20, 3)
            # At the defaults (last.pt every epoch), and with one checkpoint at the end: the
            # members' per-epoch checkpoints cost the same as the runs' and dilute the gain.
            for overrides in ((), (f"trainer.checkpoint_every_n_epochs={epochs}",)):
                log(f"trainer.seeds={seeds} against {seeds} runs one after another {' '.join(overrides)}")
                report["seeds"].append(bench_seeds(scratch, seeds, epochs, pairs, overrides, log))
        if "members" in parts:
            log("trainer.seeds=K for K = " + ", ".join(str(k) for k in (QUICK_CURVE if quick else CURVE)))
            report["members"] = bench_members(scratch, QUICK_CURVE if quick else CURVE, log=log)
        for sweep in (sweeps or (QUICK if quick else SWEEPS)) if "sweeps" in parts else ():
            log(f"sweep: dltips-train -m {' '.join(sweep.overrides)}, basic against stacked launcher")
            report["sweeps"].append(bench_sweep(sweep, scratch, 1 if quick else sweep.pairs, pycache, log))
        if "sweep1024" in parts:
            sweep = sweep1024.QUICK if quick else sweep1024.SWEEP
            log(f"sweep, run whole: dltips-train -m hydra/launcher=stacked {' '.join(sweep.overrides)}")
            report["sweep1024"] = bench_sweep1024(sweep, scratch, pycache, log=log)
        rates.append(gemm_rate(repeats=2 if quick else 3, device=device))  # before and after: take the best
        report["gemm_flops"] = max(rates)
        if "startup" in parts:
            log("startup")
            names = STARTUP_CHILDREN if not quick else ["dltips-train"]  # quick: the command only, not the floor
            for name in names:  # untimed: fills the bytecode cache where it starts empty
                time_startup(name, scratch / "startup-warm", pycache)
            for i in range(1 if quick else 2):
                for name in names:
                    report["startup"].setdefault(name, []).append(time_startup(name, scratch / f"startup{i}", pycache))
    report["machine"]["load_average_end"] = load_average()
    report["date"], report["duration_s"] = time.strftime("%Y-%m-%d"), time.perf_counter() - began
    return report
