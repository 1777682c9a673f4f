"""The training loop: one network or a stack of K, the same code read top to bottom.

zero_grad → forward → loss → backward → step → schedule → log, every epoch evaluated on the
training and validation sets. What differs between one network and a stack is behind the
Networks interface (dltips.engine.members); what is written about them is the recorder's
(dltips.engine.recorder). The loop decides when a network is done, and why.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from omegaconf import DictConfig

from dltips.engine.build import build_networks
from dltips.engine.members import HydraContext, Networks
from dltips.engine.recorder import COMPLETED, DIVERGED, STOPPED_EARLY, Recorder
from dltips.engine.threads import use_threads
from dltips.run.files import allow_open_files
from dltips.run.interrupt import signals_caught
from dltips.run.resume import Position, write_config
from dltips.run.rundir import owned


def train_networks(cfgs: list[DictConfig], contexts: list[HydraContext], root: DictConfig | None = None) -> Networks:
    """Train one network, or several stacked, each in its own run directory (and `root`'s
    config in its own); returns them, each member with its metrics.json as `report`."""
    ms = build_networks(cfgs, contexts)  # every bad value is reported here, before anything is written
    use_threads(cfgs[0].trainer.threads, ms.model, contexts[0].cores, ms.optimizer)
    roots = [Path(root.output_dir)] if root is not None else []
    allow_open_files(len(ms.members), per_network=2)  # its .lock and its event file
    rec = Recorder(ms)
    with owned(*roots, *(m.out for m in ms.members)):  # one process per run directory, before any write
        for c in ([root] if root is not None else []) + [m.cfg for m in ms.members]:
            if not c.get("resume"):
                write_config(c, Path(c.output_dir))
        try:
            fit(ms, rec)
        finally:  # whatever stopped the loop, what it saved reaches the disk
            rec.saver.wait()
    return ms


def fit(ms: Networks, rec: Recorder) -> None:
    """Train until every network is done: completed, stopped early or diverged; a signal saves
    where each stopped and raises Interrupted."""
    cfg, model, optimizer = ms.cfg, ms.model, ms.optimizer
    at = rec.start()
    batch_size, per_step = cfg.data.batch_size, cfg.scheduler.interval == "step"
    log_every = cfg.trainer.log_every_n_steps
    step, epoch, signum = at.step, at.epoch - 1, 0
    epochs = rec.epochs(range(at.epoch, cfg.trainer.max_epochs if ms.running() else at.epoch))
    with signals_caught() as received:
        for epoch in epochs:
            if not per_step:
                set_lr(optimizer, ms.schedule(epoch))
            model.train()
            # An interrupted epoch goes on in its own order from its next batch.
            order = at.order if epoch == at.epoch and at.order is not None else ms.order()
            batches = order.split(batch_size, dim=-1)  # (B,) or, stacked, (S, B): each network its own order
            for b in range(at.batch if epoch == at.epoch else 0, len(batches)):
                if per_step:
                    set_lr(optimizer, ms.schedule(step))
                xb, yb = ms.batch(batches[b])
                xb = ms.augment(xb)
                optimizer.zero_grad(set_to_none=True)
                logits = model(xb)
                loss = ms.loss(logits, yb)
                loss.backward()
                optimizer.step()
                step += 1
                if step % log_every == 0:  # the only host sync inside the epoch
                    losses = rec.log_step(ms.losses(loss, logits, yb), xb, step)
                    for k in ms.running():
                        if not math.isfinite(losses[k]):
                            rec.finish(
                                k, DIVERGED, epoch, step, f"loss became {losses[k]} at step {step} (epoch {epoch})"
                            )
                    if not ms.running():
                        break
                if received:
                    signum = received[0]
                    break
            if signum:
                raise rec.interrupt(Position(epoch, step, order, b + 1), signum)
            end_epoch(ms, rec, epoch, step)
            if not ms.running():
                break
            ms.drop_done()  # those done (stopped early, diverged) cost no more compute
    for k in ms.running():
        rec.finish(k, COMPLETED, epoch, step)


def end_epoch(ms: Networks, rec: Recorder, epoch: int, step: int) -> None:
    """Score every running network on the training and validation sets (the lecture's first
    check is the training set itself, so it is measured like val: eval mode), then early
    stopping decides who goes on."""
    scores = ms.evaluate(("train", "val"))
    for k, metrics in scores.items():
        m = ms.members[k]
        if not math.isfinite(metrics["train/loss"]):
            rec.finish(
                k,
                DIVERGED,
                epoch,
                step,
                f"training loss became {metrics['train/loss']} in epoch {epoch} (by step {step})",
            )
            continue
        improved = m.stopper.update(epoch, metrics, m.view)
        rec.end_epoch(k, metrics, epoch, step, improved)
        if m.stopper.should_stop:
            rec.finish(k, STOPPED_EARLY, epoch, step)
    rec.epoch_done(epoch)


def set_lr(optimizer: torch.optim.Optimizer, factor: float | torch.Tensor) -> None:
    """Every group's rate: its initial rate (saved with the optimizer) times the schedule's
    factor (one, or one per network)."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor
