"""The `dltips-train` console script: the command (dltips.launch.cli) imported under a handler,
so that Ctrl-C or SIGTERM while Hydra and the rest load ends in one line, not a traceback."""

from __future__ import annotations

import signal
import sys


def main() -> None:
    def stop(signum, frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, stop)  # cli.main installs its own as its first instruction
    try:
        from dltips.launch import cli
    except KeyboardInterrupt as err:
        signum = err.args[0] if err.args else signal.SIGINT
        print(f"dltips-train: interrupted by {signal.Signals(signum).name} while starting", file=sys.stderr)
        sys.exit(128 + signum)
    cli.main()
