"""The `dltips-train` command: Hydra around dltips.train.run.

The training code (and torch with it, seconds to import) is imported only once there is
something to train, so `--help`, `--cfg` and `--info` answer at once.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from dltips.resolvers import CONFIG_DIR  # importing it registers the resolvers configs/hydra/ calls


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    """Train with the composed config; `dltips-train --help` describes it."""
    from dltips.train import run

    return run(cfg)


if __name__ == "__main__":
    main()
