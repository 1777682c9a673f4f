"""How many CPU threads torch computes with (`trainer.threads`).

torch starts one thread per core. For the lecture's networks that is the slowest choice: a step
of a small MLP is a few small matmuls, and splitting each over threads costs more in handoffs
than it saves, the more so when another process keeps a core busy. Measured side by side on a
2-core machine with one other busy process (`uv run python scripts/bench_threads.py`, best of 3,
SGD steps): 2 threads against 1 made a step 4.2× slower for the digits MLP (64-128-128-10,
batch 32, 26k parameters), 31× for a 10×64 sigmoid net, 4.1× for 784-512-512-10 (670k, batch
128) and 3.1× for 784-1024×3-10 (2.9M, batch 256). `auto` therefore starts at one thread up to
AUTO_ONE_THREAD_BELOW parameters, and at torch's own choice (all cores, or OMP_NUM_THREADS, or
the joblib launcher's share of the cores) above it.

Then it measures (ThreadTuner): the same machine idle turns the answer round. A stack of 64
digits MLPs (1.7M parameters in batched matmuls) took 3.4 ms a step on 2 threads against 5.7 ms
on 1, and 58 against 85 ms to score its splits; with one other busy process, 14.3–14.5 against
6.1–6.8 ms. So a run of at least MEASURED_FROM parameters on a CPU with more cores than one
times its own steps on one thread and on all, keeps the faster, and tries again after
TRIAL_EVERY steps, for a neighbour that starts or stops later (twice as long after each trial
that changed nothing: a trial on the slower count is what measuring costs). Below MEASURED_FROM,
threads do not help a step on an idle machine (the digits MLP: 0.355 against 0.361 ms) and a
trial costs most where it hurts most (the 10×64 net's 31×). A stack's weights after an epoch
were bit for bit the same on 1 and 2 threads; a sum of more than torch's grain (32,768 elements)
is split over the threads, and its last bits can then depend on the count: `trainer.threads=N`
where exact floats must repeat.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from typing import Callable

import torch
from torch import nn

from dltips.checks import is_int
from dltips.config.errors import ConfigError

AUTO_ONE_THREAD_BELOW = 5_000_000  # parameters: below it, each network measured beside a busy process ran best on one
MEASURED_FROM = 250_000  # parameters (a stack's, all members): a stack of 16 digits MLPs, 424k, took 30% less
TRIAL_STEPS = 5  # steps timed on each count: their median, so that an epoch's end among them is no step
TRIAL_EVERY = 400  # steps on the chosen count before the next trial, doubled after each that changed nothing
MARGIN = 0.9  # the other count is taken when its median step is at least 10% shorter

log = logging.getLogger("dltips")
# torch's thread count when this process started, before dltips set it: what `auto` gives a large
# network unless the launcher shares the cores between jobs running side by side.
TORCH_DEFAULT = torch.get_num_threads()


def resolve(threads, parameters: int, most: int | None = None) -> int:
    """The thread count for `trainer.threads` (`auto` or an integer >= 1) and a model size;
    `most`: the cores this job may use (the joblib launcher's share), by default torch's count."""
    if threads == "auto":
        return 1 if parameters < AUTO_ONE_THREAD_BELOW else most or TORCH_DEFAULT
    if not (is_int(threads) and threads >= 1):
        raise ConfigError(f"Invalid trainer.threads: {threads!r}; allowed: auto or an integer >= 1")
    return threads


def use_threads(
    threads, model: nn.Module, most: int | None = None, optimizer: torch.optim.Optimizer | None = None
) -> int:
    """Set torch's thread count for this run; returns it. With `auto` on a CPU of more cores than
    one, the run's `optimizer` then measures it (ThreadTuner, a step post-hook)."""
    parameters = sum(p.numel() for p in model.parameters())
    n = resolve(threads, parameters, most)
    torch.set_num_threads(n)
    cores = most or TORCH_DEFAULT
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    if threads == "auto" and optimizer is not None and cores > 1 and on_cpu and parameters >= MEASURED_FROM:
        optimizer.register_step_post_hook(ThreadTuner((1, cores), n))
    return n


class ThreadTuner:
    """torch's thread count, kept at the faster of `counts` (one and all cores) as this run's own
    steps measure it: TRIAL_STEPS steps timed on the chosen count, then as many on the other,
    the faster kept; again after TRIAL_EVERY steps, or twice as many as the last time when the
    trial changed nothing. Called after every optimizer step; a step's time is from one call to
    the next (the whole iteration: batch, forward, backward, update). The first step after a
    change is not counted: the threads are starting up."""

    def __init__(self, counts: tuple[int, int], start: int, clock: Callable[[], float] = time.perf_counter):
        self.counts, self.chosen, self.clock = counts, start, clock
        self.times = {n: deque(maxlen=TRIAL_STEPS) for n in counts}
        self.current, self.left, self.last = start, TRIAL_STEPS + 1, None
        self.every = TRIAL_EVERY
        torch.set_num_threads(start)

    def __call__(self, optimizer=None, args=None, kwargs=None) -> None:
        now = self.clock()
        if self.last is not None:
            self.times[self.current].append(now - self.last)
        self.last = now
        self.left -= 1
        if self.left > 0:
            return
        if self.current == self.chosen:  # the chosen count is timed: now the other
            self.use(next(n for n in self.counts if n != self.chosen))
            self.left = TRIAL_STEPS + 1
            return
        tried, kept = statistics.median(self.times[self.current]), statistics.median(self.times[self.chosen])
        if tried < MARGIN * kept:
            log.info(
                "torch threads: %d, not %d (a step took %.2f ms on %d, %.2f ms on %d)",
                *(self.current, self.chosen, tried * 1e3, self.current, kept * 1e3, self.chosen),
            )
            self.chosen, self.every = self.current, TRIAL_EVERY
        else:
            self.every *= 2
        self.use(self.chosen)
        self.left = self.every

    def use(self, n: int) -> None:
        torch.set_num_threads(n)
        self.current, self.last = n, None  # the next step starts the threads: not timed
