"""The `dltips-train` command: Hydra around dltips.launch.job.run.

The training code (and torch with it, seconds to import) is imported only when the command
trains, so `--help`, `--cfg` and `--info` answer at once; a command that trains starts with
Python's garbage collector off until it is in (dltips.launch.collector).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from dltips.config.errors import ConfigError
from dltips.config.plan import discard_unlaunched
from dltips.config.resolvers import CONFIG_DIR  # importing it registers the resolvers configs/hydra/ calls
from dltips.launch.collector import start_uncollected
from dltips.run.interrupt import stop_on_sigterm


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float:
    """Train with the composed config; `dltips-train --help` describes it."""
    from dltips.launch.job import run, training_code_loaded

    training_code_loaded()

    return run(cfg)


# Hydra's modes, each one flag with its short form: a command takes one.
MODES = (("--multirun", "-m"), ("--cfg", "-c"), ("--info", "-i"), ("--run", "-r"), ("--shell-completion", "-sc"))
# Flags that print something and train nothing.
ANSWERS = {"--cfg", "-c", "--info", "-i", "--shell-completion", "-sc", "--help", "-h", "--hydra-help", "--version"}


def main() -> None:
    """`dltips-train`. Hydra lets errors through whole (HYDRA_FULL_ERROR) so that the ones a user
    can fix are told in one line: a run directory that cannot be created (under a file, an
    unwritable place), and Hydra's own composition errors (an unknown key or option)."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    stop_on_sigterm()
    modes = [flags[0] for flags in MODES if any(arg.split("=")[0] in flags for arg in sys.argv[1:])]
    if len(modes) > 1:  # Hydra would raise a ValueError with its traceback
        print(f"dltips-train: error: {' and '.join(modes)} do not go together; allowed: one of them", file=sys.stderr)
        sys.exit(2)
    try:
        try:
            if not any(arg.split("=")[0] in ANSWERS for arg in sys.argv[1:]):
                start_uncollected()  # until training_code_loaded(): a third of a second of a start
            hydra_main()
        except BaseException:
            discard_unlaunched()
            raise
    except CompactHydraException as err:  # what Hydra itself tells without a traceback (before
        print(f"dltips-train: error: {one_line(err)}", file=sys.stderr)  # OSError: a missing config is both)
        sys.exit(2)
    except OSError as err:
        where = f" {err.filename!r}" if err.filename else ""
        print(
            f"dltips-train: error: cannot write{where}: {err.strerror or err}; "
            "allowed: hydra.run.dir / hydra.sweep.dir in a writable directory",
            file=sys.stderr,
        )
        sys.exit(2)
    except KeyboardInterrupt as err:  # outside any job (Hydra's set-up, a sweep's summary)
        signum = getattr(err, "signum", signal.SIGINT)
        print(f"dltips-train: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        logging.disable(logging.CRITICAL)  # the one line is all: no exit hook's log after it
        sys.exit(128 + signum)
    except Exception as err:
        cause = config_error(err)  # a resolver's (resume=), wrapped by OmegaConf and Hydra
        if cause is None:
            raise
        print(f"dltips-train: error: config error: {cause}", file=sys.stderr)
        sys.exit(2)


def one_line(err: CompactHydraException) -> str:
    """Hydra's message, whose first paragraph says what is wrong and whose rest lists the
    options and the config search path, as one line: the options after "allowed"."""
    first = " ".join(str(err).strip().split("\n\n")[0].split())
    options = getattr(err, "options", None)  # a missing config: the group's options
    return f"{first}; allowed: {', '.join(options)}" if options else first


def config_error(err: BaseException) -> ConfigError | None:
    """The ConfigError an exception was raised from, if any."""
    while err is not None:
        if isinstance(err, ConfigError):
            return err
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    main()
