"""The cost of one member-step as the stack grows: `train(cfg)` with `trainer.seeds=K` on the
default experiment (digits MLP 64-128-128-10, batch 32), K = 1 … 1,024, on this machine's device.

Each K is one whole `train(cfg)` call timed from inside by the step clock (timing.StepClock):
its steady seconds per optimizer step, divided by K, against the floor, the member-step's useful
FLOPs over the matmul rate measured in the same run. A large K pays seconds per epoch, so it
trains fewer epochs: epoch 1 is left out as warm-up where there are more, and K = 1,024 trains
one (its steps take half a second each: the first pays for any warm-up). last.pt is saved once,
after the last epoch (trainer.checkpoint_every_n_epochs = the epochs): K checkpoints an epoch
would take much of a large K's wall time and tell nothing about the step.
"""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path

import torch

from dltips.config.validate import compose_train
from dltips.engine.build import setup
from dltips.train import train

from .timing import StepClock

CURVE = {1: 8, 4: 8, 16: 4, 64: 3, 256: 2, 1024: 1}  # K -> epochs: about 3 minutes on 2 cores
QUICK_CURVE = {1: 2, 4: 1}


def steady(t: list[float], k: int) -> float:
    """Seconds per step from stamps after each step of whole epochs of k steps: first to last
    step of each epoch over the steps in between, epoch 1 left out (warm-up) where there are more."""
    epochs = len(t) // k
    if epochs < 1 or len(t) % k:
        raise RuntimeError(f"expected whole epochs of {k} steps; got {len(t)} steps")
    spans = [t[e * k + k - 1] - t[e * k] for e in range(1 if epochs > 1 else 0, epochs)]
    return sum(spans) / ((k - 1) * len(spans))


def allow_open_files(k: int) -> None:
    """Each member keeps its TensorBoard event file open: K = 1,024 needs more files than the
    common soft limit of 1,024 allows, so this process raises its own limit towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * k + 256
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else min(need, hard), hard))


def bench_members(scratch: Path, curve: dict[int, int], overrides: tuple[str, ...] = (), log=print) -> dict:
    """One timed `train(cfg)` with trainer.seeds=K for each K of `curve` (K -> epochs), after
    one untimed short run (first-call costs); `overrides` on the default experiment."""
    base = ["trainer.progress=log", f"trainer.threads={torch.get_num_threads()}", *overrides]
    probe = compose_train(base, scratch / "probe")
    s = setup(probe)
    n_train, batch_size = len(s.splits.train[1]), probe.data.batch_size
    steps_per_epoch = -(-n_train // batch_size)
    linears = s.model.linears()
    # Forward + backward ≈ 3 × forward, forward = 2 × Σ in×out multiply-adds per sample (loops.Case).
    flops = 6 * sum(m.in_features * m.out_features for m in linears) * batch_size
    shape = "-".join(str(n) for n in [linears[0].in_features, *(m.out_features for m in linears)])
    data = probe.data.source._target_.rsplit(".", 1)[-1].removeprefix("load_")
    cuda = s.device.type == "cuda"
    with tempfile.TemporaryDirectory(dir=scratch) as warm:
        train(compose_train([*base, "trainer.max_epochs=1"], Path(warm) / "run"))
    allow_open_files(max(curve))
    rows = []
    for k, epochs in curve.items():
        with tempfile.TemporaryDirectory(dir=scratch) as run_dir:
            cfg = compose_train(
                [
                    *base,
                    f"trainer.seeds={k}",
                    f"trainer.max_epochs={epochs}",
                    f"trainer.checkpoint_every_n_epochs={epochs}",
                ],
                Path(run_dir) / "run",
            )
            with StepClock(steps_per_epoch, cuda) as clock:
                train(cfg)
        row = {
            "k": k,
            "epochs": epochs,
            "step_s": steady(clock.times, steps_per_epoch),
            "cpu_step_s": steady(clock.cpu, steps_per_epoch),
            "setup_s": clock.times[0] - clock.start,  # train(cfg) called to its first step done
            "wall_s": clock.end - clock.start,
        }
        rows.append(row)
        log(f"  trainer.seeds={k}: {row['step_s'] / k * 1e6:,.0f} µs per member-step, {row['wall_s']:.1f} s in all")
    return {
        "name": f"{data} MLP {shape}, batch {batch_size}",
        "device": str(s.device),
        "steps_per_epoch": steps_per_epoch,
        "flops_per_member_step": flops,
        "rows": rows,
    }
