"""Python's garbage collector around a sweep of many jobs in one process (the stacked launcher).

Every job set up keeps its configs alive until its stack trains: thousands of OmegaConf nodes,
each in a reference cycle with its parent, and as many again become garbage. The automatic
collector scans the survivors again in its older generations as they grow: a quarter of the
set-up's CPU time at 128 jobs, and a third of building a 64-member stack.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager


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
