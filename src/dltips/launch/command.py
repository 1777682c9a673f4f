"""The `dltips-train` console script: the command (dltips.launch.cli) imported under a handler,
so that Ctrl-C or SIGTERM while Hydra and the rest load ends in one line, not a traceback.

Once the command is done and every exit handler has run (logging flushed and closed, writers
closed, non-daemon threads joined), the process ends at once: the interpreter's own teardown,
freeing torch's modules one by one, took a second more, more than a small sweep's summary.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys

# The status the process exits with, once known (None: 0; a message: 1, as Python exits).
STATUS: list = [None]


def end_now() -> None:
    """The last exit handler (registered first): flush what Python would and leave."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a pipe gone
            pass
    code = STATUS[0]
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def main() -> None:
    def stop(signum, frame):
        raise KeyboardInterrupt(signum)

    atexit.register(end_now)  # handlers run last-registered first: this one after all others
    signal.signal(signal.SIGTERM, stop)  # cli.main installs its own as its first instruction
    try:
        try:
            from dltips.launch import cli
        except KeyboardInterrupt as err:
            signum = err.args[0] if err.args else signal.SIGINT
            print(f"dltips-train: interrupted by {signal.Signals(signum).name} while starting", file=sys.stderr)
            sys.exit(128 + signum)
        cli.main()
    except SystemExit as err:
        STATUS[0] = err.code
        raise
    except BaseException:  # Python prints its traceback and exits 1
        STATUS[0] = 1
        raise
