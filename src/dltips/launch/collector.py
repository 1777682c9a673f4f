"""Python's garbage collector around a command's start, and around a sweep of many jobs in one
process (the stacked launcher).

Importing torch creates about a million objects that live as long as the process. The collector
passes over all of them again in every full collection while they are imported and in every
one after: a third of a second of a run's start on this machine, where a plain torch script
takes two. So a command that trains starts with the collector off, and once the training code
is in, freezes what is alive (gc.freeze) and turns it back on: the passes after it scan only
what the run itself creates.

Every job set up keeps its configs alive until its stack trains: thousands of OmegaConf nodes,
each in a reference cycle with its parent, and as many again become garbage. The automatic
collector scans the survivors again in its older generations as they grow: a quarter of the
set-up's CPU time at 128 jobs, and a third of building a 64-member stack.
"""

from __future__ import annotations

import atexit
import functools
import gc
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Whether this process's collector was turned off by start_uncollected (and is not back on yet).
PAUSED = [False]


def start_uncollected() -> None:
    """A command that trains starts with the collector off (dltips.launch.cli.main): Hydra
    composes, and torch and the training code are imported, without a full pass over them.
    started() turns it back on. A launcher that trains nothing in this process
    (Hydra's joblib or submitit launchers: their workers are processes of their own) leaves it
    off while it waits for them; the launching process only collects results."""
    if gc.isenabled():
        gc.disable()
        PAUSED[0] = True


@functools.cache  # once a process: what is frozen stays frozen
def started() -> None:
    """Everything alive now (the training code, imported: dltips.launch.job.training_code_loaded)
    left out of the collector's passes for the rest of the process, and the collector back on if
    start_uncollected turned it off."""
    gc.freeze()
    # Unfrozen at exit, for the interpreter's last collection: extension modules that count
    # their objects (nanobind's, in triton) report what was never freed as leaked.
    atexit.register(gc.unfreeze)
    if PAUSED[0]:
        PAUSED[0] = False
        gc.enable()


@contextmanager
def frozen() -> Iterator[None]:
    """What is alive now left out of the collector's passes until the end of the block (it is
    collected first, so no garbage is kept): building a stack of K members walks K configs'
    worth of new objects, and each full pass would scan every job's config again."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# Jobs set up between two collections of the young objects: about 1 MB of short-lived config
# nodes a job waits for the next one.
COLLECT_EVERY = 32


@contextmanager
def collected_young(every: int = COLLECT_EVERY) -> Iterator[Callable[[], None]]:
    """Python's collector off, and the young generation collected every `every` calls of the
    function it yields: every object is scanned once, while young, not again as the older
    generations it would be promoted to grow."""
    enabled = gc.isenabled()
    gc.disable()
    calls = itertools.count(1)

    def done() -> None:
        if next(calls) % every == 0:
            gc.collect(0)

    try:
        yield done
    finally:
        gc.collect(0)
        if enabled:
            gc.enable()
