"""The `dltips-train` command: Hydra around dltips.launch.job.run.

The training code (and torch with it, seconds to import) is imported only once there is
something to train, so `--help`, `--cfg` and `--info` answer at once.
"""

from __future__ import annotations

import os
import sys

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from dltips.config.errors import ConfigError
from dltips.config.resolvers import CONFIG_DIR  # importing it registers the resolvers configs/hydra/ calls


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float:
    """Train with the composed config; `dltips-train --help` describes it."""
    from dltips.launch.job import run

    return run(cfg)


def main() -> None:
    """`dltips-train`. Hydra lets errors through whole (HYDRA_FULL_ERROR) so that the ones a user
    can fix are told in one line: a run directory that cannot be created (under a file, an
    unwritable place), and Hydra's own composition errors (an unknown key or option)."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        hydra_main()
    except OSError as err:
        where = f" {err.filename!r}" if err.filename else ""
        print(
            f"dltips-train: error: cannot write{where}: {err.strerror or err}; "
            "allowed: hydra.run.dir / hydra.sweep.dir in a writable directory",
            file=sys.stderr,
        )
        sys.exit(2)
    except CompactHydraException as err:  # what Hydra itself tells without a traceback
        print(f"dltips-train: error: {err}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:
        cause = config_error(err)  # a resolver's (resume=), wrapped by OmegaConf and Hydra
        if cause is None:
            raise
        print(f"dltips-train: error: config error: {cause}", file=sys.stderr)
        sys.exit(2)


def config_error(err: BaseException) -> ConfigError | None:
    """The ConfigError an exception was raised from, if any."""
    while err is not None:
        if isinstance(err, ConfigError):
            return err
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    main()
