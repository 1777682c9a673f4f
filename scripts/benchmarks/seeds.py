"""K seeds stacked (`trainer.seeds=K`) against the same K runs one after another.

Both train the default experiment (digits MLP) with seeds 0 … K−1, whole `train(cfg)` calls:
data preparation, per-epoch evaluation, logging and checkpoints included. The step clock also
gives the time of one optimizer step of each, so the per-step gain shows apart from the rest.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from dltips.config.validate import compose_train
from dltips.engine.build import setup
from dltips.train import train

from .timing import StepClock

VARIANTS = ("sequential", "stacked")


def timed(cfgs: list, n_train: int, batch_size: int) -> dict:
    """Wall and CPU seconds for train(cfg) over `cfgs`, one after another, and the mean steady
    seconds per optimizer step."""
    wall, cpu, steps = time.perf_counter(), time.process_time(), []
    for cfg in cfgs:
        with StepClock(-(-n_train // batch_size), cuda=torch.cuda.is_available()) as clock:
            train(cfg)
        steps.append(clock.run(n_train, batch_size).steady_s)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "step_s": sum(steps) / len(steps)}


def bench_seeds(scratch: Path, k: int, epochs: int, repeats: int, overrides: tuple[str, ...] = (), log=print) -> dict:
    """`repeats` interleaved pairs (order alternating) of K sequential runs and one K-member run,
    both with `overrides` on the default experiment."""
    base = [
        f"trainer.max_epochs={epochs}",
        "trainer.progress=log",
        f"trainer.threads={torch.get_num_threads()}",
        *overrides,
    ]
    probe = compose_train(base, scratch / "probe")
    n_train, batch_size = len(setup(probe).splits.train[1]), probe.data.batch_size
    steps_per_epoch = -(-n_train // batch_size)

    def configs(variant: str, run_dir: Path) -> list:  # composed before the clock starts
        if variant == "stacked":
            return [compose_train([*base, f"trainer.seeds={k}"], run_dir / "stacked")]
        return [compose_train([*base, f"seed={seed}"], run_dir / f"seed={seed}") for seed in range(k)]

    with tempfile.TemporaryDirectory(dir=scratch) as warm:  # first-call costs, outside the timings
        for variant in VARIANTS:
            for cfg in configs(variant, Path(warm))[:1]:
                cfg.trainer.max_epochs = 2
                train(cfg)
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(repeats):
        for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            with tempfile.TemporaryDirectory(dir=scratch) as run_dir:
                runs[variant].append(timed(configs(variant, Path(run_dir)), n_train, batch_size))
        log(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{v} {runs[v][-1]['wall_s']:.1f} s" for v in VARIANTS))
    return {
        "name": f"digits MLP 64-128-128-10 ReLU, batch {batch_size}, {epochs} epochs, seeds 0…{k - 1}",
        "k": k,
        "epochs": epochs,
        "overrides": list(overrides),
        "steps_per_epoch": steps_per_epoch,
        "runs": runs,
    }
