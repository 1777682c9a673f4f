"""TensorBoard and metrics.json: what a run leaves behind for comparison."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import _AsyncWriter
from torch.utils.tensorboard.summary import scalar

from dltips.run.checkpoint import atomic_write


class SyncRecords:
    """Stands in for tensorboard's `_AsyncWriter`: each event is written in the calling thread.

    The async writer hands every event to a writer thread, and that handoff (about 100 µs,
    mostly waiting for the GIL) costs more than writing the few hundred bytes a run logs every
    `log_every_n_steps`; on a 1 ms step it was a 6% slowdown. The file is flushed whenever the
    run flushes (every epoch) and on close, as before.
    """

    def __init__(self, record_writer):
        self._records, self._closed = record_writer, False

    def write(self, data: bytes) -> None:
        self._records.write(data)

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._records.flush()
            self._records.close()


def open_writer(log_dir: Path | str, purge_step: int | None = None) -> SummaryWriter:
    """A SummaryWriter that writes its events synchronously (see SyncRecords)."""
    writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
    events = writer.file_writer.event_writer
    threaded = getattr(events, "_async_writer", None)
    if isinstance(threaded, _AsyncWriter):  # else a tensorboard we don't know: leave it as it is
        threaded.flush()  # the file's first event (its version), written by the thread
        threaded._worker.stop()
        events._async_writer = SyncRecords(threaded._writer)
    return writer


def log_scalars(writer: SummaryWriter, values: dict, step: int) -> None:
    """Many values (tag -> number or 0-d tensor, tensors all on one device) for one step, with a
    single device-to-host copy instead of one sync per value."""
    if values:
        tensors = [v.float() for v in values.values() if torch.is_tensor(v)]
        fetched = iter(torch.stack(tensors).tolist() if tensors else [])
        numbers = [next(fetched) if torch.is_tensor(v) else float(v) for v in values.values()]
        # One event holding every value: per-tag add_scalar calls cost more than the step itself.
        merged = Summary(value=[v for tag, x in zip(values, numbers) for v in scalar(tag, x).value])
        writer.file_writer.add_summary(merged, step)


def write_json(path: Path, data: dict) -> None:
    """metrics.json and friends, written atomically (see checkpoint.atomic_write). NaN and
    infinities (a missing metric) are written as null: JSON has no NaN."""
    atomic_write(path, lambda f: f.write(json.dumps(finite(data), indent=2, sort_keys=True, allow_nan=False).encode()))


def finite(data):
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data
