"""Shared fixtures: compose the real configs the way `dltips-train` does."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from dltips.config import CONFIG_DIR

FAST = ["data=synthetic", "data.source.n_samples=400", "trainer.max_epochs=2", "trainer.progress=log"]


def compose_config(overrides: list[str], output_dir: Path | None = None, hydra: bool = False) -> DictConfig:
    """The config `dltips-train` would run; `hydra=True` keeps the `hydra` node (launcher, sweeper)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        extra = [f"output_dir={output_dir}"] if output_dir is not None else []
        return compose(config_name="train", overrides=[*overrides, *extra], return_hydra_config=hydra)


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg(*overrides) -> a composed config writing into a fresh temporary run directory."""
    counter = iter(range(1000))

    def make(*overrides: str, fast: bool = True) -> DictConfig:
        return compose_config([*(FAST if fast else []), *overrides], tmp_path / f"run{next(counter)}")

    return make
