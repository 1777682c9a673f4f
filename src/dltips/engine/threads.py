"""How many CPU threads torch computes with (`trainer.threads`).

torch starts one thread per core. For the lecture's networks that is the slowest choice: a step
of a small MLP is a few small matmuls, and splitting each over threads costs more in handoffs
than it saves, the more so when another process keeps a core busy. Measured side by side on a
2-core machine with one other busy process (`uv run python scripts/bench_threads.py`, best of 3,
SGD steps): 2 threads against 1 made a step 4.2× slower for the digits MLP (64-128-128-10,
batch 32, 26k parameters), 31× for a 10×64 sigmoid net, 4.1× for 784-512-512-10 (670k, batch
128) and 3.1× for 784-1024×3-10 (2.9M, batch 256). `auto` is therefore one thread up to
AUTO_ONE_THREAD_BELOW parameters, and torch's own choice (all cores, or OMP_NUM_THREADS, or the
joblib launcher's share of the cores) above it.
"""

from __future__ import annotations

import torch
from torch import nn

from dltips.checks import is_int
from dltips.config.errors import ConfigError

AUTO_ONE_THREAD_BELOW = 5_000_000  # parameters: every network measured below it ran fastest on one
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


def use_threads(threads, model: nn.Module, most: int | None = None) -> int:
    """Set torch's thread count for this run; returns it."""
    n = resolve(threads, sum(p.numel() for p in model.parameters()), most)
    torch.set_num_threads(n)
    return n
