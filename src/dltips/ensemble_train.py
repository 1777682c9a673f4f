"""`trainer.ensemble=K`: K networks of one shape trained together, each as if trained alone.

Member k has seed `seed + k`: its own initialisation, batch order, augmentation and dropout
masks; all members share the data split (`data.split_seed`). The K networks are stacked into
one module (dltips.nn.stacked), so a step costs one forward and backward for all of them.
Each member writes a complete run directory, `member_<k>/`, with the config that reproduces it
alone (`dltips-train` with that config gives the same numbers, to float tolerance), its
metrics.json, TensorBoard events and last.pt (a checkpoint `resume=` continues alone).
The ensemble's directory holds the mean of the members' metrics and the explicit ensemble's
(the average of the members' predicted probabilities) in its metrics.json.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from dltips import checkpoint
from dltips.config import config_errors
from dltips.ensemble import dropout_ensemble_curve, explicit_ensemble_curve, log_curve
from dltips.logger import collect_hparams, write_hparams, write_json
from dltips.nn.stacked import member_optimizer_state, member_state, stack
from dltips.train import (
    Setup,
    build_model,
    build_optimizer,
    due,
    hydra_choices_and_overrides,
    log_epoch,
    progress,
    set_lr,
    setup,
    write_config,
)

log = logging.getLogger("dltips")


def fork_generator(device: torch.device) -> torch.Generator:
    """A generator in the state the device's default generator is in now."""
    g = torch.Generator(device=device)
    g.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return g


def setup_ensemble(cfg: DictConfig) -> tuple[Setup, list[torch.Generator]]:
    """The single-run setup (every check included), with the model and optimizer replaced by
    the K members stacked; returns it and each member's dropout generator."""
    s = setup(cfg)
    with config_errors():
        models, dropout_rngs = [], []
        for k in range(cfg.trainer.ensemble):
            models.append(build_model(cfg, s.splits, s.device, cfg.seed + k))
            dropout_rngs.append(fork_generator(s.device))  # where member k alone would start drawing
        model = stack(models, dropout_rngs)
        return dataclasses.replace(s, model=model, optimizer=build_optimizer(cfg, model)), dropout_rngs


def member_config(cfg: DictConfig, k: int, out: Path) -> DictConfig:
    """The config that trains member k alone: its own seed, the ensemble's data split."""
    member = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))  # split_seed: ${seed} → a number
    member.seed, member.trainer.ensemble = cfg.seed + k, 1
    member.output_dir = str(out / f"member_{k:02d}")
    return member


@torch.no_grad()
def evaluate_members(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> list[dict[str, float]]:
    """train.evaluate for each of the k stacked members, with one host sync for all of them."""
    model.eval()
    total = torch.zeros(k, device=x.device)
    correct = torch.zeros(k, dtype=torch.long, device=x.device)
    for xb, yb in zip(x.split(8192), y.split(8192)):  # the same chunks as train.evaluate
        logits = model(xb.expand(k, *xb.shape))
        total += torch.stack([loss_fn(member, yb) for member in logits]) * len(yb)
        correct += (logits.argmax(dim=-1) == yb).sum(dim=1)
    losses, hits = total.tolist(), correct.tolist()
    return [{"loss": loss / len(y), "acc": hit / len(y)} for loss, hit in zip(losses, hits)]


def split_metrics(s: Setup, k: int, splits: tuple[str, ...]) -> list[dict[str, float]]:
    """{"train/loss": …, "val/acc": …} for every member over the named splits."""
    rows: list[dict[str, float]] = [{} for _ in range(k)]
    for split in splits:
        for row, values in zip(rows, evaluate_members(s.model, s.loss_fn, *getattr(s.splits, split), k)):
            row |= {f"{split}/{name}": v for name, v in values.items()}
    return rows


def member_checkpoint(s: Setup, k: int, epoch: int, step: int, shuffle: torch.Generator, dropout_rng: torch.Generator, stopper) -> dict:
    """What train.checkpoint_state holds for a run alone: member k's weights, optimizer state and
    random streams (its dropout generator stands in for torch's default one)."""
    rng = checkpoint.rng_state(shuffle)
    if s.device.type == "cuda":
        rng["cuda"][s.device.index or torch.cuda.current_device()] = dropout_rng.get_state()
    else:
        rng["torch"] = dropout_rng.get_state()
    return {
        "epoch": epoch,
        "step": step,
        "model": member_state(s.model.state_dict(), k),
        "optimizer": member_optimizer_state(s.optimizer, k),
        "early_stopping": stopper.state_dict(),
        "initial_weights": [],
        "rng": rng,
    }


def member_model(cfg: DictConfig, s: Setup, k: int) -> nn.Module:
    model = instantiate(cfg.model, in_features=s.splits.num_features, out_features=s.splits.num_classes).to(s.device)
    model.load_state_dict(member_state(s.model.state_dict(), k))
    return model.eval()


def train_ensemble(cfg: DictConfig) -> dict[str, float]:
    """train() for K stacked members; returns the members' mean metrics and the explicit
    ensemble's test accuracy and NLL (`ensemble/test/acc`, `ensemble/test/nll`)."""
    s, dropout_rngs = setup_ensemble(cfg)  # every bad value is reported here, before anything is written
    started = time.perf_counter()
    n_members, out = cfg.trainer.ensemble, Path(cfg.output_dir)
    write_config(cfg, out)
    members = [member_config(cfg, k, out) for k in range(n_members)]
    for member in members:
        write_config(member, Path(member.output_dir))
    writers = [SummaryWriter(log_dir=member.output_dir) for member in members]
    shuffles = [torch.Generator(device=s.device).manual_seed(member.seed) for member in members]
    stoppers = [instantiate(cfg.regularizer.early_stopping) for _ in members]
    model, optimizer, loss_fn = s.model, s.optimizer, s.loss_fn

    x, y = s.splits.train
    batch_size, per_step = cfg.data.batch_size, cfg.scheduler.interval == "step"
    log_every = cfg.trainer.log_every_n_steps
    base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    status, message = ["completed"] * n_members, [""] * n_members
    finals: list[dict[str, float] | None] = [None] * n_members
    step, epoch = 0, -1
    epochs = progress(range(cfg.trainer.max_epochs), cfg.trainer.progress)

    def stop_member(k: int, why: str) -> None:  # as train() does for a diverging run alone
        status[k], message[k] = "diverged", why
        finals[k] = split_metrics(s, n_members, ("train", "val", "test"))[k] | ends(epoch, step, stoppers[k])
        log.warning("member %d diverged: %s", k, why)

    for epoch in epochs:
        if not per_step:
            set_lr(optimizer, base_lrs, s.schedule(epoch))
        model.train()
        order = torch.stack([torch.randperm(len(y), device=s.device, generator=g) for g in shuffles])
        for idx in order.split(batch_size, dim=1):  # idx: (members, batch), each member its own order
            if per_step:
                set_lr(optimizer, base_lrs, s.schedule(step))
            xb, yb = x[idx], y[idx]
            if s.augment.enabled:  # each member's transforms from its own stream, applied in one call
                angle, shift = (torch.cat(t) for t in zip(*(s.augment.draw(idx.shape[1], s.device, g) for g in shuffles)))
                xb = s.augment.apply(xb.flatten(0, 1), angle, shift).view(xb.shape)
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            # Σ_k C_k: each member's gradient is that of its own mean loss, ∂(Σ_k C_k)/∂θ_k = ∂C_k/∂θ_k.
            loss = loss_fn(logits.flatten(0, 1), yb.flatten()) * n_members
            loss.backward()
            optimizer.step()
            step += 1
            if step % log_every == 0:  # the only host sync inside the epoch
                values = torch.stack([loss_fn(z, t) for z, t in zip(logits.detach(), yb)]).tolist()
                for k, value in enumerate(values):
                    if status[k] != "completed":
                        continue
                    if math.isfinite(value):
                        writers[k].add_scalar("train/loss", value, step)
                    else:
                        stop_member(k, f"loss became {value} at step {step} (epoch {epoch})")
        if "completed" not in status:
            break
        rows = split_metrics(s, n_members, ("train", "val"))
        for k, metrics in enumerate(rows):
            if status[k] != "completed":
                continue
            if not math.isfinite(metrics["train/loss"]):
                stop_member(k, f"training loss became {metrics['train/loss']} in epoch {epoch} (by step {step})")
                continue
            log_epoch(writers[k], metrics, epoch, step, optimizer, model, histograms=False)
            stoppers[k].update(epoch, metrics, None)
            if due(epoch, cfg.trainer):
                writers[k].flush()  # every point up to the checkpoint is on disk before it is
                state = member_checkpoint(s, k, epoch, step, shuffles[k], dropout_rngs[k], stoppers[k])
                checkpoint.save(Path(members[k].output_dir) / "last.pt", state)
        val = [r["val/acc"] for r, st in zip(rows, status) if st == "completed"]
        if isinstance(epochs, tqdm):
            epochs.set_postfix(val_acc=f"{sum(val) / max(1, len(val)):.4f}")
        else:
            log.info("epoch %d: val/acc mean %.4f (min %.4f, max %.4f) over %d members", epoch, sum(val) / len(val), min(val), max(val), len(val))

    finished = split_metrics(s, n_members, ("train", "val", "test"))
    choices, overrides = hydra_choices_and_overrides()
    nets = [member_model(cfg, s, k) for k in range(n_members)]
    for k, member in enumerate(members):
        final = finals[k] or finished[k] | ends(epoch, step, stoppers[k])
        finals[k] = final
        for tag in ("test/loss", "test/acc", "best_epoch", "stop_epoch"):
            writers[k].add_scalar(tag, final[tag], int(final["steps"]))
        report = {"status": status[k], "message": message[k], "stopped_early": False, "metrics": final}
        if cfg.ensemble_eval and status[k] == "completed":
            report["ensemble"] = dropout_ensemble_curve(nets[k], *s.splits.test)
            log_curve(writers[k], report["ensemble"], "dropout")
        write_hparams(writers[k], collect_hparams(member, choices, overrides) | {"status": status[k]}, final)
        writers[k].close()
        report["time_s"] = time.perf_counter() - started
        write_json(Path(member.output_dir) / "metrics.json", report)

    curve = explicit_ensemble_curve(nets, *s.splits.test)
    summary = {key: sum(f[key] for f in finals) / n_members for key in finals[0]}
    summary |= {"ensemble/test/acc": curve[-1]["arithmetic/acc"], "ensemble/test/nll": curve[-1]["arithmetic/nll"]}
    report = {
        "status": "completed" if all(st == "completed" for st in status) else "diverged",
        "members": {Path(m.output_dir).name: st for m, st in zip(members, status)},
        "metrics": summary,
        "explicit_ensemble": curve,
        "time_s": time.perf_counter() - started,
    }
    write_json(out / "metrics.json", report)
    log.info(
        "%d members: test/acc mean %.4f, ensemble of all %.4f (%s)", n_members, summary["test/acc"], summary["ensemble/test/acc"], out
    )
    return summary


def ends(epoch: int, step: int, stopper) -> dict[str, float]:
    return {"epochs": epoch + 1, "steps": step, "stop_epoch": epoch, "best_epoch": stopper.best_epoch}
