"""Timing from inside: a global optimizer post-step hook stamps every step of any loop."""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from .loops import Case, Workload, lightning_module, make_case, runner


@dataclass
class Run:
    """One timed training run: seconds per optimizer step, by the wall clock and in CPU time."""

    steady_s: float  # inside epochs 2…E: first to last step of each epoch, epoch boundaries left out
    all_in_s: float  # last step of epoch 1 to the last step: per-epoch work (eval, checkpoints) included
    cpu_steady_s: float  # the same spans in process CPU time (all threads): blind to other processes
    cpu_all_in_s: float
    samples_per_s: float  # over the steady spans
    setup_s: float  # run call → first step done (model, optimizer, run directory, …)
    wall_s: float


def per_step(t: list[float], k: int) -> tuple[float, float]:
    """(steady, all-in) seconds per step from stamps after each of whole epochs of k steps."""
    epochs = len(t) // k
    spans = [t[e * k + k - 1] - t[e * k] for e in range(1, epochs)]  # epoch 1 is the warm-up
    return sum(spans) / ((k - 1) * (epochs - 1)), (t[-1] - t[k - 1]) / ((epochs - 1) * k)


class StepClock:
    """Wall and CPU stamps after every optimizer step of any optimizer (a global hook)."""

    def __init__(self, steps_per_epoch: int, cuda: bool):
        self.k, self.cuda, self.times, self.cpu = steps_per_epoch, cuda, [], []

    def _stamp(self, *_) -> None:
        if self.cuda and len(self.times) % self.k in (0, self.k - 1):  # the span ends: wait for the GPU
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def __enter__(self) -> StepClock:
        self.handle = register_optimizer_step_post_hook(self._stamp)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.end = time.perf_counter()
        self.handle.remove()

    def run(self, n_train: int, batch_size: int) -> Run:
        k, n = self.k, len(self.times)
        if n < 2 * k or n % k:
            raise RuntimeError(f"expected whole epochs of {k} steps, at least 2; got {n} steps")
        (steady, all_in), (cpu_steady, cpu_all_in) = per_step(self.times, k), per_step(self.cpu, k)
        return Run(
            steady,
            all_in,
            cpu_steady,
            cpu_all_in,
            samples_per_s=(n_train - batch_size) / (steady * (k - 1)),  # steps 2…k of each epoch
            setup_s=self.times[0] - self.start,
            wall_s=self.end - self.start,
        )


def time_run(variant: str, case: Case, epochs: int, scratch: Path) -> Run:
    with tempfile.TemporaryDirectory(dir=scratch) as run_dir:
        start = runner(variant, case, epochs, Path(run_dir))
        with StepClock(case.steps_per_epoch, case.x.is_cuda) as clock:
            start()
    return clock.run(len(case.y), case.batch_size)


def gemm_rate(n: int = 2048, repeats: int = 3, device: torch.device | str = "cpu") -> float:
    """FLOP/s of an n×n float32 matmul, best of `repeats` (the machine's attainable peak)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    inner = 20 if torch.device(device).type == "cuda" else 1
    best = math.inf
    for _ in range(repeats + 1):  # the first is a warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(inner):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - start) / inner)
    return 2 * n**3 / best


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bench_workload(
    workload: Workload,
    scratch: Path,
    repeats: int,
    target_s: float,
    warmup: bool,
    budget_s: float = math.inf,
    log=print,
) -> dict:
    """Every variant, interleaved over repeats (start rotated each repeat), same epochs for all;
    fewer repeats (at least 2, or 1 when only 1 is asked) once `budget_s` is spent (a busy machine)."""
    began = time.perf_counter()
    case = make_case(workload, scratch)
    variants = [v for v in workload.variants if v != "lightning" or lightning_module() is not None]
    # Calibrate: enough epochs that each run's steady part lasts about target_s.
    probe = time_run("hand", case, 2, scratch)
    epochs = min(40, max(2, 1 + math.ceil(target_s / (probe.steady_s * case.steps_per_epoch))))
    if warmup:  # lazy imports, allocator, first SummaryWriter: paid once, outside the timings
        for v in variants:
            time_run(v, case, 2, scratch)
    runs: dict[str, list[Run]] = {v: [] for v in variants}
    for r in range(repeats):
        if r >= min(2, repeats) and time.perf_counter() - began > budget_s:
            log(f"  stopping after {r} repeats: over the {budget_s:.0f} s budget")
            break
        for v in variants[r % len(variants) :] + variants[: r % len(variants)]:
            runs[v].append(time_run(v, case, epochs, scratch))
        log(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{v} {runs[v][-1].steady_s * 1e6:.0f} µs" for v in variants))
    return {
        "key": workload.key,
        "name": workload.name,
        "batch_size": case.batch_size,
        "n_train": len(case.y),
        "steps_per_epoch": case.steps_per_epoch,
        "epochs": epochs,
        "repeats": len(runs[variants[0]]),
        "flops_per_sample": case.flops_per_sample(),
        "skipped": {"lightning": "not installed: `uv sync --group bench`"}
        if "lightning" in set(workload.variants) - set(variants)
        else {},
        "runs": {v: [asdict(run) for run in rs] for v, rs in runs.items()},
    }
