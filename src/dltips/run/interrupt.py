"""Ctrl-C and SIGTERM (which SLURM sends to a job it cancels or preempts): the run finishes the
step it is in, writes last.pt where it stopped, marks metrics.json `interrupted` and says how to
resume; the command then exits 130 (SIGINT) or 143 (SIGTERM), as a process killed by the signal
would. A second Ctrl-C stops at once.

A signal another handler waits for (submitit's for SIGUSR2, which SLURM sends before a job's time
limit: it requeues the job) is treated the same way while the loop runs, and then handed on to
that handler (`hand_on`), so that the requeued job finds last.pt where it stopped."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from dltips.run import report


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal after writing what it needs to resume."""

    def __init__(self, signum: int, message: str, epoch: int = -1, step: int = 0):
        super().__init__(message)
        self.signum, self.message, self.epoch, self.step = signum, message, epoch, step

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Stopped(KeyboardInterrupt):
    """SIGTERM outside the training loop (imports, set-up, the final evaluation): stops the
    command as Ctrl-C does there, so that it ends in one line and exits 143."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_sigterm() -> None:
    """From now on (the command's first instruction), SIGTERM outside the loop raises Stopped
    instead of killing the process with nothing said (the loop installs its own handler)."""

    def stop(signum, frame):
        raise Stopped(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


# The loop stands in for these only while a handler (not the default action) is installed.
HANDED_ON = tuple(getattr(signal, name) for name in ("SIGUSR1", "SIGUSR2") if hasattr(signal, name))


@contextmanager
def signals_caught():
    """Yields a list that receives the number of the first SIGINT, SIGTERM or handed-on signal;
    the loop reads it after every step (a list test costs nothing next to a step)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # handlers live in the main thread only
        yield received
        return

    def handler(signum, frame):
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        received.append(signum)

    handed_on = [sig for sig in HANDED_ON if callable(signal.getsignal(sig))]
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, *handed_on)}
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
    how = f"dltips-train \"resume='{resume or run_dir}'\""
    message = f"{signal.Signals(signum).name} at step {step} (epoch {epoch}); resume with: {how}"
    report.write(run_dir, report.INTERRUPTED, message, time_s=time_s)
    return Interrupted(signum, message, epoch, step)


def hand_on(signum: int) -> None:
    """After an interrupted run wrote last.pt: run the handler the loop stood in for, if any
    (submitit's requeues the job and exits, or raises when it will not requeue it)."""
    handler = signal.getsignal(signum)
    if signum in HANDED_ON and callable(handler):
        handler(signum, None)
