"""Shared fixtures: compose the real configs the way `dltips-train` does."""

from __future__ import annotations

import os
import sys

# Where the environment turns Python's bytecode cache off (some CI images do), this process and
# every command a test starts would compile torch from source again, seconds each: the tests keep
# the cache on (before torch is imported here).
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    sys.dont_write_bytecode = False

import pytest  # noqa: E402
import torch  # noqa: E402

from dltips.config.validate import compose_train as compose_config  # noqa: F401  (tests import it from here)

# The maths the tests check runs on tiny tensors: one thread, as trainer.threads=auto gives the
# runs they train (on a busy 2-core machine a second thread made small steps many times slower).
torch.set_num_threads(1)

# pyproject.toml's addopts run the suite on two pytest-xdist workers, which take the tests one at a
# time; the tests of these modules go to one worker together, first: they share a module-scoped
# fixture that must exist once (the SLURM cluster of tests/slurm_cluster.py), and what it waits for
# runs beside the rest. (xdist's own xdist_group mark groups nothing under pytest 9.2, whose nodes
# no longer take the node id that xdist renames.)
ONE_WORKER = ("tests/test_slurm.py",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "load":
        return None  # another --dist, asked for on the command line
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        """A unit of work per test but for ONE_WORKER's modules, a unit each. The largest units
        are handed out first (--loadscope-reorder, xdist's default)."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER else nodeid

    return Scheduling(config, log)


FAST = ["data=synthetic", "data.source.n_samples=400", "trainer.max_epochs=2", "trainer.progress=log"]


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg(*overrides) -> a composed config writing into a fresh temporary run directory."""
    counter = iter(range(1000))

    def make(*overrides: str, fast: bool = True):
        return compose_config([*(FAST if fast else []), *overrides], tmp_path / f"run{next(counter)}")

    return make
