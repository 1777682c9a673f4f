"""Ctrl-C and SIGTERM (which SLURM sends before it preempts or times out a job): the run
finishes the step it is in, writes last.pt where it stopped, marks metrics.json `interrupted`
and says how to resume; the command then exits 130 (SIGINT) or 143 (SIGTERM), as a process
killed by the signal would. A second Ctrl-C stops at once."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from dltips.logger import write_json


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal after writing what it needs to resume."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum, self.message = signum, message

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def signals_caught():
    """Yields a list that receives the number of the first SIGINT or SIGTERM; the loop reads
    it after every step (a list test costs nothing next to a step)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # handlers live in the main thread only
        yield received
        return

    def handler(signum, frame):
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        received.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def record_interrupted(
    run_dir: Path, signum: int, epoch: int, step: int, time_s: float | None = None, resume: Path | None = None
) -> Interrupted:
    """After last.pt: the run's metrics.json says `interrupted` and how to go on (`resume`: the
    directory to resume, the run's own unless said); returns the Interrupted to raise."""
    message = f"{signal.Signals(signum).name} at step {step} (epoch {epoch}); resume with: dltips-train \"resume='{resume or run_dir}'\""
    write_json(run_dir / "metrics.json", {"status": "interrupted", "message": message, "metrics": {}, "time_s": time_s})
    return Interrupted(signum, message)
