"""The stacked launcher's set-up pass collects young garbage itself and leaves the collector as it found it."""

from __future__ import annotations

import gc
import weakref

from dltips.launch.collector import collected_young, frozen


class Node:
    """A reference cycle, as OmegaConf's nodes and their parents make."""

    def __init__(self) -> None:
        self.me = self


def test_young_garbage_is_collected_on_schedule_and_the_collector_restored():
    assert gc.isenabled()
    with collected_young(every=2) as job_done:
        assert not gc.isenabled()  # no automatic pass rescans the jobs' configs
        first = weakref.ref(Node())  # unreachable, kept alive by its cycle alone
        job_done()
        assert first() is not None  # one job done: not yet collected
        job_done()
        assert first() is None  # the second: the young generation collected
        last = weakref.ref(Node())
    assert last() is None  # leaving collects what the last jobs left
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with collected_young(every=1):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_frozen_keeps_no_garbage_and_thaws_what_it_froze():
    garbage = weakref.ref(Node())
    before = gc.get_freeze_count()
    with frozen():
        assert garbage() is None  # collected before freezing: no garbage kept for the block
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == before
