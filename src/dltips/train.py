"""One training run: `train(cfg) -> metrics`, the loop (the `dltips-train` command around it is
dltips.cli and dltips.job)."""
from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from dltips import checkpoint
from dltips.build import Setup, setup
from dltips.config import ConfigError
from dltips.early_stopping import EarlyStopping
from dltips.ensemble import dropout_ensemble_curve, log_curve
from dltips.diagnostics import GradientFlow, custom_scalars_layout, log_gradient_flow, step_sizes
from dltips.hparams import chosen_groups, collect_hparams, write_session
from dltips.logger import log_scalars, open_writer, write_json
from dltips.interrupt import record_interrupted, signals_caught
from dltips.rundir import owned
from dltips.resume import Position, after_last_event_file, checkpoint_state, drop_newer_best, restore, resume_config
from dltips.sweep_plan import Plan
from dltips.threads import use_threads
from dltips.tags import END, EPOCH, LR, TRAIN_LOSS, TRAIN_LOSS_EPOCH, WEIGHTS, per_layer

log = logging.getLogger("dltips")


def set_lr(optimizer: torch.optim.Optimizer, base_lrs: list[float], factor: float) -> None:
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * factor


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss and accuracy of the network in eval mode (dropout off) over a whole split."""
    model.eval()
    total, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    for xb, yb in zip(x.split(8192), y.split(8192)):  # chunks bound the memory on big splits
        logits = model(xb)
        total += loss_fn(logits, yb) * len(yb)
        correct += (logits.argmax(dim=1) == yb).sum()
    return {"loss": total.item() / len(y), "acc": correct.item() / len(y)}


def progress(epochs: range, mode: str):
    """A progress bar on a terminal, plain log lines otherwise (files, CI, sweeps)."""
    bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
    return tqdm(epochs, desc="epoch", unit="epoch", leave=False) if bar else epochs


def write_config(cfg: DictConfig, out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, out / "config.yaml")
    except OSError as err:
        raise ConfigError(f"Invalid output_dir: {str(out)!r} cannot be written ({err.strerror}); allowed: a writable directory") from err


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, validate every epoch, test once at the end; return the final metrics."""
    cfg = resume_config(cfg, command_line_overrides(cfg))
    if cfg.trainer.ensemble != 1:  # K networks at once; checked (an integer >= 1) in its setup
        from dltips.ensemble_train import train_ensemble  # it builds on this module

        return train_ensemble(cfg)
    s = setup(cfg)  # every bad value is reported here, before anything is written
    use_threads(cfg.trainer.threads, s.model)
    out = Path(cfg.output_dir)
    if not cfg.get("resume"):
        write_config(cfg, out)
    with owned(out):  # one process per run directory
        return fit(cfg, s, out)


def fit(cfg: DictConfig, s: Setup, out: Path) -> dict[str, float]:
    """train() once its config is checked and its directory is its own: the loop."""
    started = time.perf_counter()
    model, optimizer, loss_fn = s.model, s.optimizer, s.loss_fn
    shuffle = torch.Generator(device=s.device).manual_seed(cfg.seed)
    flow = GradientFlow(model) if cfg.diagnostics else None
    at = Position()
    if cfg.get("resume"):
        at = restore(cfg, s, out / "last.pt", shuffle, flow)
        drop_newer_best(out / "best.pt", at.epoch)
        log.info("resuming %s at epoch %d (step %d)", out, at.epoch, at.step)
        after_last_event_file(out)
    announce(out)
    # purge_step hides what a killed run logged after its last checkpoint: no duplicated steps.
    writer = open_writer(out, purge_step=at.step + 1 if at.step else None)
    if flow:
        writer.add_custom_scalars(custom_scalars_layout(len(flow.linears), cfg.model.activation, hasattr(optimizer, "effective_step")))

    x, y = s.splits.train
    batch_size, per_step = cfg.data.batch_size, cfg.scheduler.interval == "step"
    log_every = cfg.trainer.log_every_n_steps
    base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    step, epoch, status, message = at.step, at.epoch - 1, "completed", ""
    if s.stopper.should_stop:  # resumed after its early stop: it stays stopped
        log.info("stopped early at epoch %d before; not trained further", epoch)
    epochs = progress(range(at.epoch, cfg.trainer.max_epochs if not s.stopper.should_stop else at.epoch), cfg.trainer.progress)
    with signals_caught() as received:
        for epoch in epochs:
            if not per_step:
                set_lr(optimizer, base_lrs, s.schedule(epoch))
            model.train()
            # An interrupted epoch goes on in its own order from its next batch.
            order = at.order if epoch == at.epoch and at.order is not None else torch.randperm(len(y), device=s.device, generator=shuffle)
            batches = order.split(batch_size)
            for b in range(at.batch if epoch == at.epoch else 0, len(batches)):
                idx = batches[b]
                if per_step:
                    set_lr(optimizer, base_lrs, s.schedule(step))
                xb, yb = s.augment(x[idx], shuffle), y[idx]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                optimizer.step()
                step += 1
                if step % log_every == 0:  # the only host sync inside the epoch
                    value = loss.item()
                    if not math.isfinite(value):
                        status, message = "diverged", f"loss became {value} at step {step} (epoch {epoch})"
                        break
                    writer.add_scalar(TRAIN_LOSS, value, step)
                    log_scalars(writer, step_sizes(optimizer, model) | (flow.measure(xb, step) if flow else {}), step)
                if received:
                    status = "interrupted"
                    break
            if status == "interrupted":
                state = checkpoint_state(cfg, s, Position(epoch, step, order, b + 1), shuffle, flow)
                write_checkpoints(out, lambda: state, writer, last=True, best=False)
                break
            if status == "completed":
                # The lecture's first check is the training set itself, so measure it like val: eval mode.
                metrics = {f"train/{k}": v for k, v in evaluate(model, loss_fn, x, y).items()}
                metrics |= {f"val/{k}": v for k, v in evaluate(model, loss_fn, *s.splits.val).items()}
                if not math.isfinite(metrics["train/loss"]):
                    status, message = "diverged", f"training loss became {metrics['train/loss']} in epoch {epoch} (by step {step})"
            if status == "diverged":
                kept = "the last good checkpoint is kept" if (out / "last.pt").is_file() else "no checkpoint was written before"
                log.warning("diverged: %s; the learning rate is likely too high (%s)", message, kept)
                break

            log_epoch(writer, metrics, epoch, step, optimizer, model, cfg.trainer.weight_histograms)
            if flow:
                log_gradient_flow(writer, flow, epoch, step, cfg.trainer.max_epochs)
            improved = s.stopper.update(epoch, metrics, model)
            state = lambda: checkpoint_state(cfg, s, Position(epoch, step), shuffle, flow)  # noqa: E731 (built only if written)
            write_checkpoints(out, state, writer, due(epoch, cfg.trainer) or s.stopper.should_stop, improved)
            if isinstance(epochs, tqdm):
                epochs.set_postfix(loss=f"{metrics['train/loss']:.4f}", val_acc=f"{metrics['val/acc']:.4f}")
            log_to_file(epochs, "epoch %d: loss %.4f val/loss %.4f val/acc %.4f", epoch, metrics["train/loss"], metrics["val/loss"], metrics["val/acc"])
            if s.stopper.should_stop:
                log.info("early stopping at epoch %d; best %s at epoch %d", epoch, s.stopper.monitor, s.stopper.best_epoch)
                break
    if status == "interrupted":
        writer.close()
        raise record_interrupted(out, received[0], epoch, step, time.perf_counter() - started)

    if s.stopper.patience is not None and s.stopper.best_state is not None:
        model.load_state_dict(s.stopper.best_state)  # early stopping keeps the best weights
    final: dict[str, float] = {}
    for split, (xs, ys) in [("train", s.splits.train), ("val", s.splits.val), ("test", s.splits.test)]:
        final |= {f"{split}/{k}": v for k, v in evaluate(model, loss_fn, xs, ys).items()}
    final |= ends(epoch, step, s.stopper)
    log_end(writer, final, step, status)
    if status == "diverged":
        final = without_results(final)
    report = {
        "status": status,
        "message": message,
        "stopped_early": s.stopper.should_stop,
        "metrics": final,
    }
    if cfg.ensemble_eval and status == "completed":  # dropout ≈ ensemble, scored on the test set
        report["ensemble"] = dropout_ensemble_curve(model, *s.splits.test)
        log_curve(writer, report["ensemble"], "dropout")
    choices, overrides, plan = hydra_context()
    write_session(writer, collect_hparams(cfg, choices, overrides, plan), status)
    writer.close()
    report["time_s"] = time.perf_counter() - started
    write_json(out / "metrics.json", report)
    log.info("%s: test/acc %.4f test/loss %.4f; %s (%s)", status, final["test/acc"], final["test/loss"], best_epoch_text(s.stopper), out)
    return final


def best_epoch_text(stopper: EarlyStopping) -> str:
    """The final line's account of the best epoch (by the early-stopping monitor)."""
    if stopper.best_epoch < 0:
        return "no epoch finished"
    values = ", ".join(f"{k} {v:.4f}" for k, v in stopper.best_metrics.items() if k.startswith("val/"))
    return f"best epoch {stopper.best_epoch} by {stopper.monitor}: {values}"


def announce(out: Path) -> None:
    log.info("run directory: %s (watch it: tensorboard --logdir %s)", out, out)


def log_to_file(epochs, message: str, *args) -> None:
    """An epoch's line: on the console and in train.log, or, under a progress bar (which shows
    it already), in train.log only, so that the log holds every epoch either way."""
    if not isinstance(epochs, tqdm):
        log.info(message, *args)
        return
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, message, args, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


# Metrics measured on a split. A diverged run's come from NaN weights (every argmax the same
# class: accuracy 0.1 on digits): they are not results, so they are NaN (null in metrics.json).
SPLIT_METRICS = ("train/", "val/", "test/")


def without_results(final: dict[str, float]) -> dict[str, float]:
    """A diverged run's final metrics: where it stopped, and its split metrics missing."""
    return {k: math.nan if k.startswith(SPLIT_METRICS) else v for k, v in final.items()}


def write_checkpoints(run_dir: Path, state: Callable[[], dict], writer: SummaryWriter, last: bool, best: bool) -> None:
    """last.pt when due, best.pt when the monitored metric improved (a link to last.pt if both)."""
    if not (last or best):
        return
    writer.flush()  # every point up to the checkpoint is on disk before it is
    snapshot = state()
    if last:
        checkpoint.save(run_dir / "last.pt", snapshot)
    if best and last:
        checkpoint.copy(run_dir / "last.pt", run_dir / "best.pt")
    elif best:
        checkpoint.save(run_dir / "best.pt", snapshot)


def ends(epoch: int, step: int, stopper: EarlyStopping) -> dict[str, float]:
    """Where a run stopped, for metrics.json."""
    return {"epochs": epoch + 1, "steps": step, "stop_epoch": epoch, "best_epoch": stopper.best_epoch}


def due(epoch: int, trainer: DictConfig) -> bool:
    """Whether last.pt is written after this epoch: every N epochs and after the last one."""
    return (epoch + 1) % trainer.checkpoint_every_n_epochs == 0 or epoch == trainer.max_epochs - 1


def log_epoch(writer, metrics: dict, epoch: int, step: int, optimizer, model: nn.Module, histograms: bool) -> None:
    # train/loss itself is the mini-batch curve
    values = {TRAIN_LOSS_EPOCH if tag == TRAIN_LOSS else tag: value for tag, value in metrics.items()}
    log_scalars(writer, values | {LR: optimizer.param_groups[0]["lr"], EPOCH: epoch}, step)
    if histograms:
        for i, layer in enumerate(model.linears(), start=1):
            writer.add_histogram(per_layer(WEIGHTS, i), layer.weight, step)


def log_end(writer, final: dict[str, float], step: int, status: str) -> None:
    """The end-of-run numbers, under their own tags (dltips.tags.END). A diverged run's test
    metrics are left out: they are those of NaN weights (accuracy 0.1 from argmax), not a result."""
    shown = END if status == "completed" else {k: v for k, v in END.items() if not k.startswith("test/")}
    log_scalars(writer, {tag: final[name] for name, tag in shown.items()}, step)


def command_line_overrides(cfg: DictConfig) -> list[str] | None:
    """What the command line changed next to `resume`, for resume_config to check; None for
    Python callers. A sweep job re-run into its own directory (dltips.rundir.attempt_to_redo)
    goes on with the overrides it was started with: nothing is changed."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN and cfg.get("resume") and Path(cfg.resume).resolve() == Path(hydra_cfg.runtime.output_dir).resolve():
        return []
    return list(hydra_cfg.overrides.task)


def hydra_context() -> tuple[dict[str, str], list[str], Plan | None]:
    """The config groups chosen, the command-line overrides and, in a sweep, the sweep's plan
    (dltips.sweep_plan), when run through Hydra."""
    if not HydraConfig.initialized():
        return {}, [], None
    hydra_cfg = HydraConfig.get()
    choices = chosen_groups(hydra_cfg.runtime.choices)
    plan = Plan.load(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None
    return choices, list(hydra_cfg.overrides.task), plan


def main() -> None:
    """`python -m dltips.train`: the `dltips-train` command."""
    from dltips.cli import main as command

    command()


if __name__ == "__main__":
    main()
