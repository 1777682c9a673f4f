"""One training run: `train(cfg) -> metrics`, and the `dltips-train` command around it."""
from __future__ import annotations

import logging
import json
import math
import os
import random
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from dltips import checkpoint
from dltips.config import CONFIG_DIR, ConfigError, check_batch_size, check_run, config_errors, resolve_device
from dltips.data import Augment, Splits, prepare
from dltips.early_stopping import EarlyStopping
from dltips.ensemble import dropout_ensemble_curve, log_curve
from dltips.diagnostics import GradientFlow, custom_scalars_layout, step_sizes
from dltips.logger import collect_hparams, log_scalars, write_hparams, write_json
from dltips.optim import param_groups

log = logging.getLogger("dltips")


@dataclass
class Setup:
    """Everything a run trains with, built from the config before anything is written."""

    device: torch.device
    splits: Splits
    augment: Augment
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Callable[[int], float]
    stopper: EarlyStopping


def setup(cfg: DictConfig) -> Setup:
    with config_errors():
        check_run(cfg)
        device = resolve_device(cfg.trainer.device)
        seed_everything(cfg.seed)
        d = cfg.data
        splits = prepare(
            instantiate(d.source),
            seed=d.split_seed,
            val_fraction=d.val_fraction,
            test_fraction=d.test_fraction,
            train_size=d.train_size,
            normalize=d.normalize,
            device=device,
        )
        check_batch_size(d.batch_size, len(splits.train[1]))
        augment = Augment(d.augment.rotate, d.augment.shift, splits.image_shape, splits.shift, splits.scale)
        model = build_model(cfg, splits, device, cfg.seed)
        optimizer = build_optimizer(cfg, model)
        schedule = instantiate(cfg.scheduler.factor)
        schedule(0)  # a partial checks its arguments only when called: here, not inside the loop
        return Setup(
            device=device,
            splits=splits,
            augment=augment,
            model=model,
            loss_fn=instantiate(cfg.loss),
            optimizer=optimizer,
            schedule=schedule,
            stopper=instantiate(cfg.regularizer.early_stopping),
        )


def build_model(cfg: DictConfig, splits: Splits, device: torch.device, seed: int) -> nn.Module:
    # Seeded here, not only by seed_everything: the initialisation (and the dropout masks drawn
    # after it) depend on the seed alone, not on whatever the data source drew before.
    torch.manual_seed(seed)
    return instantiate(cfg.model, in_features=splits.num_features, out_features=splits.num_classes).to(device)


def build_optimizer(cfg: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    optimizer = instantiate(cfg.optimizer)(param_groups(model, cfg.regularizer.weight_decay))
    for group in optimizer.param_groups:  # schedules scale this; it is saved with the optimizer
        group.setdefault("initial_lr", group["lr"])
    return optimizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def resume_config(cfg: DictConfig) -> DictConfig:
    """`resume=<run dir>` continues that run with its own saved config, in its own directory."""
    if not cfg.get("resume"):
        return cfg
    run_dir = Path(cfg.resume)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"Invalid resume: {str(run_dir)!r}; allowed: a run directory holding config.yaml and last.pt")
    saved = OmegaConf.load(run_dir / "config.yaml")
    saved.output_dir, saved.resume = str(run_dir), str(run_dir)
    return saved


def checkpoint_state(s: Setup, epoch: int, step: int, shuffle: torch.Generator, flow: GradientFlow | None) -> dict:
    return {
        "epoch": epoch,
        "step": step,
        "model": s.model.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "early_stopping": s.stopper.state_dict(),
        "initial_weights": flow.initial if flow else [],
        "rng": checkpoint.rng_state(shuffle),
    }


def restore(s: Setup, state: dict, shuffle: torch.Generator, flow: GradientFlow | None) -> tuple[int, int]:
    """Load a checkpoint into the run's objects; returns (next epoch, step)."""
    s.model.load_state_dict(state["model"])
    s.optimizer.load_state_dict(state["optimizer"])
    s.stopper.load_state_dict(state["early_stopping"])
    if flow and state["initial_weights"]:
        flow.initial = [w.to(s.device) for w in state["initial_weights"]]
    checkpoint.set_rng_state(state["rng"], shuffle)
    return state["epoch"] + 1, state["step"]


def write_config(cfg: DictConfig, out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, out / "config.yaml")
    except OSError as err:
        raise ConfigError(f"Invalid output_dir: {str(out)!r} cannot be written ({err.strerror}); allowed: a writable directory") from err


def after_last_event_file(run_dir: Path) -> None:
    """TensorBoard reads a run's event files in name order, and names start with the creation
    second: a resumed run's file must not share its second with the file of the run it
    continues, or its purge of the killed run's last steps is read before them."""
    newest = max((int(p.name.split(".")[3]) for p in run_dir.glob("events.out.tfevents.*")), default=0)
    while int(time.time()) <= newest:
        time.sleep(0.05)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, validate every epoch, test once at the end; return the final metrics."""
    cfg = resume_config(cfg)
    if cfg.trainer.ensemble != 1:  # K networks at once; checked (an integer >= 1) in its setup
        from dltips.ensemble_train import train_ensemble  # it builds on this module

        return train_ensemble(cfg)
    s = setup(cfg)  # every bad value is reported here, before anything is written
    started = time.perf_counter()
    out = Path(cfg.output_dir)
    model, optimizer, loss_fn = s.model, s.optimizer, s.loss_fn
    shuffle = torch.Generator(device=s.device).manual_seed(cfg.seed)
    flow = GradientFlow(model) if cfg.diagnostics else None
    first_epoch, step = 0, 0
    if cfg.get("resume"):
        first_epoch, step = restore(s, checkpoint.load(out / "last.pt"), shuffle, flow)
        log.info("resuming %s at epoch %d (step %d)", out, first_epoch, step)
    else:
        write_config(cfg, out)
    if cfg.get("resume"):
        after_last_event_file(out)
    # purge_step hides what a killed run logged after its last checkpoint: no duplicated steps.
    writer = SummaryWriter(log_dir=str(out), purge_step=step + 1 if step else None)
    if flow:
        writer.add_custom_scalars(custom_scalars_layout(len(flow.linears)))

    x, y = s.splits.train
    batch_size, per_step = cfg.data.batch_size, cfg.scheduler.interval == "step"
    log_every = cfg.trainer.log_every_n_steps
    base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    epoch, status, message = first_epoch - 1, "completed", ""
    epochs = progress(range(first_epoch, cfg.trainer.max_epochs), cfg.trainer.progress)
    for epoch in epochs:
        if not per_step:
            set_lr(optimizer, base_lrs, s.schedule(epoch))
        model.train()
        for idx in torch.randperm(len(y), device=s.device, generator=shuffle).split(batch_size):
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
                writer.add_scalar("train/loss", value, step)
                log_scalars(writer, step_sizes(optimizer, model) | (flow.measure(xb) if flow else {}), step)
        if status == "completed":
            # The lecture's first check is the training set itself, so measure it like val: eval mode.
            metrics = {f"train/{k}": v for k, v in evaluate(model, loss_fn, x, y).items()}
            metrics |= {f"val/{k}": v for k, v in evaluate(model, loss_fn, *s.splits.val).items()}
            if not math.isfinite(metrics["train/loss"]):
                status, message = "diverged", f"training loss became {metrics['train/loss']} in epoch {epoch} (by step {step})"
        if status == "diverged":
            log.warning("diverged: %s; the learning rate is likely too high (the last good checkpoint is kept)", message)
            break

        log_epoch(writer, metrics, epoch, step, optimizer, model, cfg.trainer.weight_histograms)
        improved = s.stopper.update(epoch, metrics, model)
        save_last = due(epoch, cfg.trainer) or s.stopper.should_stop
        if save_last or improved:
            writer.flush()  # every point up to the checkpoint is on disk before it is
            state = checkpoint_state(s, epoch, step, shuffle, flow)
            if save_last:
                checkpoint.save(out / "last.pt", state)
            if improved and save_last:
                checkpoint.copy(out / "last.pt", out / "best.pt")
            elif improved:
                checkpoint.save(out / "best.pt", state)
        if isinstance(epochs, tqdm):
            epochs.set_postfix(loss=f"{metrics['train/loss']:.4f}", val_acc=f"{metrics['val/acc']:.4f}")
        else:
            log.info("epoch %d: loss %.4f val/loss %.4f val/acc %.4f", epoch, metrics["train/loss"], metrics["val/loss"], metrics["val/acc"])
        if s.stopper.should_stop:
            log.info("early stopping at epoch %d; best %s at epoch %d", epoch, s.stopper.monitor, s.stopper.best_epoch)
            break

    if s.stopper.patience is not None and s.stopper.best_state is not None:
        model.load_state_dict(s.stopper.best_state)  # early stopping keeps the best weights
    final: dict[str, float] = {}
    for split, (xs, ys) in [("train", s.splits.train), ("val", s.splits.val), ("test", s.splits.test)]:
        final |= {f"{split}/{k}": v for k, v in evaluate(model, loss_fn, xs, ys).items()}
    final |= {"epochs": epoch + 1, "steps": step, "stop_epoch": epoch, "best_epoch": s.stopper.best_epoch}
    for tag in ("test/loss", "test/acc", "best_epoch", "stop_epoch"):
        writer.add_scalar(tag, final[tag], step)
    report = {
        "status": status,
        "message": message,
        "stopped_early": s.stopper.should_stop,
        "metrics": final,
    }
    if cfg.ensemble_eval and status == "completed":  # dropout ≈ ensemble, scored on the test set
        report["ensemble"] = dropout_ensemble_curve(model, *s.splits.test)
        log_curve(writer, report["ensemble"], "dropout")
    write_hparams(writer, collect_hparams(cfg, *hydra_choices_and_overrides()) | {"status": status}, final)
    writer.close()
    report["time_s"] = time.perf_counter() - started
    write_json(out / "metrics.json", report)
    log.info("%s: test/acc %.4f test/loss %.4f (%s)", status, final["test/acc"], final["test/loss"], out)
    return final


def due(epoch: int, trainer: DictConfig) -> bool:
    """Whether last.pt is written after this epoch: every N epochs and after the last one."""
    return (epoch + 1) % trainer.checkpoint_every_n_epochs == 0 or epoch == trainer.max_epochs - 1


def log_epoch(writer, metrics: dict, epoch: int, step: int, optimizer, model: nn.Module, histograms: bool) -> None:
    # train/loss itself is the mini-batch curve
    values = {"train/loss_epoch" if tag == "train/loss" else tag: value for tag, value in metrics.items()}
    log_scalars(writer, values | {"lr": optimizer.param_groups[0]["lr"], "epoch": epoch}, step)
    if histograms:
        for i, layer in enumerate(model.linears(), start=1):
            writer.add_histogram(f"weights/layer_{i}", layer.weight, step)


def hydra_choices_and_overrides() -> tuple[dict[str, str], list[str]]:
    """The config groups chosen and the command-line overrides, when run through Hydra."""
    if not HydraConfig.initialized():
        return {}, []
    hydra_cfg = HydraConfig.get()
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if "/" not in k and v}
    return choices, list(hydra_cfg.overrides.task)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    """The command: one line for a bad config; in a sweep, a failing job is recorded in its
    directory (error.txt, metrics.json) and the sweep goes on (see dltips.sweep)."""
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    share_cores(HydraConfig.get().launcher)
    finished = Path(cfg.output_dir) / "metrics.json"
    if in_sweep and finished.is_file():  # a sweep re-run in its own directory skips finished jobs
        report = json.loads(finished.read_text())
        if report.get("status") in ("completed", "diverged"):
            log.info("already %s, skipped: %s", report["status"], finished.parent)
            return report["metrics"].get("val/acc", float("nan"))
    try:
        return train(cfg)["val/acc"]
    except (ConfigError, checkpoint.CheckpointError) as err:
        log.error("%s: %s", "config error" if isinstance(err, ConfigError) else "checkpoint error", err)
        if not in_sweep:
            raise SystemExit(2) from None
        record_failure(Path(HydraConfig.get().runtime.output_dir), err)
    except Exception as err:
        if not in_sweep:
            raise
        log.exception("job failed")
        record_failure(Path(HydraConfig.get().runtime.output_dir), err)
    return float("nan")


def share_cores(launcher: DictConfig) -> None:
    """Jobs running side by side (the joblib launcher) split the cores between them instead of
    each starting one torch thread per core and oversubscribing the CPU."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return
    cores = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs") or -1
    parallel = min(cores, n_jobs if n_jobs > 0 else cores + 1 + n_jobs)  # joblib: -1 = all cores
    torch.set_num_threads(max(1, cores // max(1, parallel)))


def record_failure(run_dir: Path, err: BaseException) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.txt").write_text("".join(traceback.format_exception(err)) + f"{type(err).__name__}: {err}\n")
    write_json(run_dir / "metrics.json", {"status": "failed", "message": f"{type(err).__name__}: {err}", "metrics": {}})


if __name__ == "__main__":
    main()
