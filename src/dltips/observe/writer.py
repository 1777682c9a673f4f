"""TensorBoard event files: a writer that writes in the calling thread, many scalars as one event,
and the epoch and end-of-run scalars of a run."""

from __future__ import annotations

from pathlib import Path

import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import _AsyncWriter
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from dltips.observe.tags import END, EPOCH, LR, TRAIN_LOSS, TRAIN_LOSS_EPOCH, WEIGHTS, per_layer
from dltips.run import report


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
        # Each value as torch's add_scalar writes it (summary.scalar: simple_value), built directly:
        # scalar() goes through numpy for every number.
        merged = Summary(value=[Summary.Value(tag=tag, simple_value=x) for tag, x in zip(values, numbers)])
        writer.file_writer.add_summary(merged, step)


def log_epoch(writer, metrics: dict, epoch: int, step: int, lr: float, model: nn.Module, histograms: bool) -> None:
    # train/loss itself is the mini-batch curve
    values = {TRAIN_LOSS_EPOCH if tag == TRAIN_LOSS else tag: value for tag, value in metrics.items()}
    log_scalars(writer, values | {LR: lr, EPOCH: epoch}, step)
    if histograms:
        for i, layer in enumerate(model.linears(), start=1):
            writer.add_histogram(per_layer(WEIGHTS, i), layer.weight, step)


def log_end(writer, final: dict[str, float], step: int, status: str) -> None:
    """The end-of-run numbers, under their own tags (dltips.observe.tags.END). A diverged run's test
    metrics are left out: they are those of NaN weights (accuracy 0.1 from argmax), not a result."""
    shown = END if status == report.COMPLETED else {k: v for k, v in END.items() if not k.startswith("test/")}
    log_scalars(writer, {tag: final[name] for name, tag in shown.items()}, step)
