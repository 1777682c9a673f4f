"""A network's life on disk, with one owner: the loop says what happened ("epoch done", "done,
because …", "interrupted"), the recorder writes it — TensorBoard events, checkpoints, the best
weights restored, the test, the sub-networks, hparams, metrics.json (dltips.run.report) and
environment.json (dltips.run.environment).

It writes the same files whether one network trains or a stack of K: only its console lines
differ (a stack's members each log to their own train.log, the console gets one line for all).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import torch

from dltips.engine.evaluate import evaluate_splits
from dltips.engine.members import Member, Networks
from dltips.engine.state import Point, checkpoint_of, point_of, restore
from dltips.observe.console import Epochs, announce, best_epoch_text
from dltips.observe.diagnostics import GradientFlow, custom_scalars_layout, log_gradient_flow
from dltips.observe.hparams import collect_hparams, experiment, group_name, write_experiment, write_session
from dltips.observe.subnetworks import log_curve, subnetwork_curve
from dltips.observe.tags import TRAIN_LOSS
from dltips.observe.writer import log_end, log_epoch, log_scalars, open_writer
from dltips.run import checkpoint, environment, report
from dltips.run.interrupt import Interrupted, record_interrupted
from dltips.run.resume import Position, after_last_event_file, drop_newer_best

log = logging.getLogger("dltips")

# Why the loop says a network is done (metrics.json's status: completed, or diverged).
COMPLETED, STOPPED_EARLY, DIVERGED = report.COMPLETED, "stopped early", report.DIVERGED
# Metrics measured on a split. A diverged run's come from NaN weights (every argmax the same
# class: accuracy 0.1 on digits): they are not results, so they are NaN (null in metrics.json).
SPLIT_METRICS = ("train/", "val/", "test/")


class Recorder:
    """Writes what happens to the networks `ms` trains; one per training pass."""

    def __init__(self, ms: Networks):
        self.ms = ms
        self.saver = checkpoint.Saver()
        self.started = time.perf_counter()
        self.several = len(ms.members) > 1  # console lines: one for all, each member's to its own log
        self.val_accs: list[float] = []  # this epoch's, for the stack's line
        self.shared: tuple[tuple, Point] | None = None  # the last checkpoints' point (self.point)

    def start(self) -> Position:
        """Resume the members that have a last.pt to go on from; open every member's writer."""
        ms = self.ms
        resumed = [k for k, m in enumerate(ms.members) if m.cfg.get("resume")]
        for k in resumed:  # one that diverged stays as it ended: its last.pt is from before
            self.adopt(k, report.DIVERGED)
        with_checkpoint = [k for k in resumed if (ms.members[k].out / "last.pt").is_file() or not ms.members[k].done]
        for m in ms.members:
            m.flow = GradientFlow(m.view) if m.cfg.diagnostics else None
        at = restore(ms, with_checkpoint) if with_checkpoint else Position()
        for k in with_checkpoint:  # completed, with nothing more to train: its files stay as they are
            m = ms.members[k]
            if not m.done and (m.stopper.should_stop or at.epoch >= m.cfg.trainer.max_epochs):
                self.adopt(k, report.COMPLETED)
        for k in ms.running():
            m = ms.members[k]
            if k in with_checkpoint:
                drop_newer_best(m.out / "best.pt", at.epoch)
                log.info("resuming %s at epoch %d (step %d)", m.out, at.epoch, at.step, extra=about(m))
                after_last_event_file(m.out)
            announce(m.out, environment.summary(environment.record(m.out, ms.device)), extra=about(m))
            # purge_step hides what a killed run logged after its last checkpoint: no duplicated steps.
            m.writer = open_writer(m.out, purge_step=at.step + 1 if at.step else None)
            if m.context.plan is not None and not at.step:  # the sweep's HPARAMS columns, in each of its runs
                write_experiment(m.writer, experiment(hparams_of(m), m.context.plan))
            if m.flow:
                effective = hasattr(ms.optimizer, "effective_step")
                m.writer.add_custom_scalars(
                    custom_scalars_layout(len(m.flow.linears), m.cfg.model.activation, effective)
                )
        for k in ms.running():
            if ms.members[k].stopper.should_stop:  # resumed after its early stop: it stays stopped
                log.info(
                    "stopped early at epoch %d before; not trained further", at.epoch - 1, extra=about(ms.members[k])
                )
                self.finish(k, STOPPED_EARLY, at.epoch - 1, at.step)
        return at

    def adopt(self, k: int, status: str) -> None:
        """A resumed network whose metrics.json already says `status` is done as it ended: no
        event, checkpoint or report is written for it again."""
        m = self.ms.members[k]
        ended = report.read(m.out)
        if ended is None or ended["status"] != status:
            return
        ended["metrics"] = {key: math.nan if v is None else v for key, v in ended["metrics"].items()}
        m.done, m.report, m.final_state = True, ended, final_weights(m)
        log.info("already %s: %s", status, m.out, extra=about(m))

    def epochs(self, epochs: range) -> Epochs:
        self.progress = Epochs(epochs, self.ms.cfg.trainer.progress)
        return self.progress

    def log_step(self, losses, xb, step: int) -> list[float]:
        """Each running network's mini-batch loss (`losses`: (K,)), step sizes and diagnostics,
        in one host sync; returns the losses as numbers. A non-finite loss is not logged: the
        loop finishes that network as diverged."""
        ms = self.ms
        values = {TRAIN_LOSS: losses} | ms.step_sizes()
        columns = dict(zip(values, torch.stack(list(values.values())).tolist()))
        inputs = ms.per_network(xb) if any(m.flow for m in ms.members) else []
        for k in ms.running():
            m = ms.members[k]
            if not math.isfinite(columns[TRAIN_LOSS][k]):
                continue
            diagnostics = m.flow.measure(inputs[k], step) if m.flow else {}
            log_scalars(m.writer, {tag: column[k] for tag, column in columns.items()} | diagnostics, step)
        return columns[TRAIN_LOSS]

    def end_epoch(self, k: int, metrics: dict[str, float], epoch: int, step: int, improved: bool) -> None:
        """Network k's epoch: its scalars, gradient-flow figure, checkpoints and line."""
        ms, m = self.ms, self.ms.members[k]
        log_epoch(m.writer, metrics, epoch, step, ms.lr(k), m.view, m.cfg.trainer.weight_histograms)
        if m.flow:
            log_gradient_flow(m.writer, m.flow, m.out.name, epoch, step, m.cfg.trainer.max_epochs)
        last = due(epoch, m.cfg.trainer) or m.stopper.should_stop
        at = Position(epoch, step)
        self.checkpoint(m, lambda: checkpoint_of(ms, k, at, self.point(at)), last, improved)
        self.val_accs.append(metrics["val/acc"])
        if not self.several:
            self.progress.show(loss=f"{metrics['train/loss']:.4f}", val_acc=f"{metrics['val/acc']:.4f}")
        line = (
            "epoch %d: loss %.4f val/loss %.4f val/acc %.4f",
            epoch,
            metrics["train/loss"],
            metrics["val/loss"],
            metrics["val/acc"],
        )
        self.progress.line(*line, run_dir=m.out if self.several else None)

    def epoch_done(self, epoch: int) -> None:
        """The epoch's checkpoints, all taken, go to the saver's thread; a stack's line for
        the epoch: its members' val/acc."""
        self.saver.start()
        done, self.val_accs = self.val_accs, []
        if self.several and done:
            mean = sum(done) / len(done)
            self.progress.show(val_acc=f"{mean:.4f}")
            self.progress.line(
                "epoch %d: val/acc mean %.4f (min %.4f, max %.4f) over %d networks",
                epoch,
                mean,
                min(done),
                max(done),
                len(done),
            )

    def point(self, at: Position) -> Point:
        """What the members' checkpoints at `at` share, read at the first of them: nothing
        trains between one member's checkpoint and the next at the same point (an epoch's end,
        an interruption), so a stack's state_dicts are walked, and the process's random streams
        read, once for all its members rather than once each."""
        key = (at.epoch, at.step, at.batch)
        if self.shared is None or self.shared[0] != key:
            self.shared = key, point_of(self.ms, at.order)
        return self.shared[1]

    def checkpoint(self, m: Member, state: Callable[[], dict], last: bool, best: bool) -> None:
        """last.pt when due, best.pt when the monitored metric improved (a link to last.pt if
        both), written by the saver's thread while training goes on."""
        if not (last or best):
            return
        m.writer.flush()  # every point up to the checkpoint is on disk before it is
        snapshot = state()
        if last:
            self.saver.submit(checkpoint.save, m.out / "last.pt", snapshot)
        if best and last:
            self.saver.submit(checkpoint.copy, m.out / "last.pt", m.out / "best.pt")
        elif best:
            self.saver.submit(checkpoint.save, m.out / "best.pt", snapshot)

    def finish(self, k: int, why: str, epoch: int, step: int, message: str = "") -> None:
        """Network k is done (COMPLETED, STOPPED_EARLY or DIVERGED): its best weights back, its
        test, sub-networks, hparams, writer closed, and metrics.json once its checkpoints are on disk."""
        ms, m = self.ms, self.ms.members[k]
        status = report.DIVERGED if why == DIVERGED else report.COMPLETED
        if why == STOPPED_EARLY:
            log.info(
                "early stopping at epoch %d; best %s at epoch %d (%s)",
                epoch,
                m.stopper.monitor,
                m.stopper.best_epoch,
                m.out,
                extra=about(m),
            )
        m.final_state = final_weights(m)
        m.view.load_state_dict(m.final_state)
        final = evaluate_splits(m.view, ms.loss_fn, m.splits, ("train", "val", "test"))
        final |= {"epochs": epoch + 1, "steps": step, "stop_epoch": epoch, "best_epoch": m.stopper.best_epoch}
        log_end(m.writer, final, step, status)
        if status == report.DIVERGED:
            kept = (
                "the last good checkpoint is kept"
                if (m.out / "last.pt").is_file()
                else "no checkpoint was written before"
            )
            log.warning(
                "diverged: %s; the learning rate is likely too high (%s; %s)", message, kept, m.out, extra=about(m)
            )
            final = {key: math.nan if key.startswith(SPLIT_METRICS) else v for key, v in final.items()}
        extra = {"stopped_early": m.stopper.should_stop}
        if m.cfg.eval_subnetworks and status == report.COMPLETED:  # dropout ≈ an ensemble of its sub-networks
            extra["subnetworks"] = subnetwork_curve(m.view, *m.splits.test, generator=m.dropout_rng)
            log_curve(m.writer, extra["subnetworks"], "dropout")
        hparams = hparams_of(m)
        write_session(m.writer, hparams, status, group_name(hparams, m.context.plan, m.context.overrides))
        m.writer.close()
        extra["time_s"] = time.perf_counter() - self.started
        self.saver.wait()  # its checkpoints on disk before metrics.json says it finished
        m.report, m.done = report.write(m.out, status, message, final, **extra), True
        log.info(
            "%s: test/acc %.4f test/loss %.4f; %s (%s)",
            status,
            final["test/acc"],
            final["test/loss"],
            best_epoch_text(m.stopper),
            m.out,
            extra=about(m),
        )

    def interrupt(self, at: Position, signum: int) -> Interrupted:
        """A signal: every running network writes last.pt where the epoch stopped and an
        `interrupted` metrics.json; returns the Interrupted to raise."""
        err = None
        for k in self.ms.running():
            m = self.ms.members[k]
            self.checkpoint(m, lambda k=k: checkpoint_of(self.ms, k, at, self.point(at)), last=True, best=False)
            m.writer.close()
            self.saver.wait()  # last.pt on disk before metrics.json says how to resume from it
            err = record_interrupted(m.out, signum, at.epoch, at.step, time.perf_counter() - self.started)
        return err


def hparams_of(m: Member) -> dict:
    return collect_hparams(m.cfg, m.context.choices, m.context.overrides, m.context.plan)


def final_weights(m: Member) -> dict:
    """The weights a network ends with: early stopping keeps the best ones, else the last."""
    if m.stopper.patience is not None and m.stopper.best_state is not None:
        return {name: t.detach().clone() for name, t in m.stopper.best_state.items()}
    return {name: t.detach().clone() for name, t in m.view.state_dict().items()}


def due(epoch: int, trainer) -> bool:
    """Whether last.pt is written after this epoch: every N epochs and after the last one."""
    return (epoch + 1) % trainer.checkpoint_every_n_epochs == 0 or epoch == trainer.max_epochs - 1


def about(m: Member) -> dict:
    """A log record's `extra` for a line about one network: a log file may keep only its own."""
    return {"run_dir": m.out}
