"""One training run: `train(cfg) -> metrics`, the loop (the `dltips-train` command around it is
dltips.launch.cli and dltips.launch.job)."""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from dltips.config.validate import check_seeds, config_errors, use_aliases
from dltips.observe.diagnostics import (
    GradientFlow,
    custom_scalars_layout,
    log_gradient_flow,
    step_sizes,
)
from dltips.observe.hparams import chosen_groups, collect_hparams, write_session
from dltips.run.interrupt import Interrupted, record_interrupted, signals_caught
from dltips.observe.writer import log_scalars, open_writer, write_json
from dltips.engine.members import HydraContext, Member, Members, build_members
from dltips.nn.stacked import StackedLinear, tie_grads
from dltips.engine.recorder import (
    announce,
    best_epoch_text,
    due,
    ends,
    log_end,
    log_epoch,
    log_to_file,
    progress,
    without_results,
    write_checkpoints,
    write_config,
)  # fmt: skip
from dltips.run.resume import (
    Position,
    after_last_event_file,
    drop_newer_best,
    member_checkpoint,
    restore,
    resume_config,
)
from dltips.run.rundir import owned
from dltips.observe.subnetworks import log_curve, subnetwork_curve
from dltips.config.plan import Plan
from dltips.observe.tags import OPTIM, TRAIN_LOSS, per_layer
from dltips.engine.threads import use_threads

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


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, validate every epoch, test once at the end; return the final metrics (with
    trainer.seeds=K, the mean over the seeds and their ensemble's: dltips.engine.seeds)."""
    cfg = resume_config(use_aliases(cfg), command_line_overrides(cfg))
    with config_errors():
        check_seeds(cfg)
    if cfg.trainer.seeds != 1:
        from dltips.engine.seeds import train_seeds  # K seeds of this config, stacked

        return train_seeds(cfg)
    context = HydraContext(*hydra_context())
    return train_members([cfg], [context]).members[0].report["metrics"]


def train_members(cfgs: list[DictConfig], contexts: list[HydraContext], root: DictConfig | None = None) -> Members:
    """Train one network, or several stacked (dltips.engine.members), each in its own run directory
    (and `root`'s config in its own); returns them, each with its metrics.json as `report`."""
    ms = build_members(cfgs, contexts)  # every bad value is reported here, before anything is written
    use_threads(cfgs[0].trainer.threads, ms.model)
    for c in ([root] if root is not None else []) + [m.cfg for m in ms.members]:
        if not c.get("resume"):
            write_config(c, Path(c.output_dir))
    roots = [Path(root.output_dir)] if root is not None else []
    with owned(*roots, *(m.out for m in ms.members)):  # one process per run directory
        try:
            fit(ms)
        finally:  # whatever stopped the loop, what it saved reaches the disk
            ms.saver.wait()
    return ms


def fit(ms: Members) -> None:
    """train_members() once its configs are checked and its directories are its own: the loop."""
    ms.started = time.perf_counter()
    cfg, model, optimizer = ms.members[0].cfg, ms.model, ms.optimizer
    at = start(ms)
    y = ms.y
    batch_size, per_step = cfg.data.batch_size, cfg.scheduler.interval == "step"
    log_every = cfg.trainer.log_every_n_steps
    base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    step, epoch, signum = at.step, at.epoch - 1, 0
    epochs = progress(range(at.epoch, cfg.trainer.max_epochs if ms.running() else at.epoch), cfg.trainer.progress)
    with signals_caught() as received:
        for epoch in epochs:
            if not per_step:
                set_lr(optimizer, base_lrs, ms.schedule(epoch))
            model.train()
            # An interrupted epoch goes on in its own order from its next batch.
            order = at.order if epoch == at.epoch and at.order is not None else draw_order(ms, y.shape[-1])
            batches = order.split(batch_size, dim=-1)  # (B,) or, stacked, (K, B): each member its own order
            for b in range(at.batch if epoch == at.epoch else 0, len(batches)):
                if per_step:
                    set_lr(optimizer, base_lrs, ms.schedule(step))
                xb, yb = ms.batch(batches[b])
                xb = augment(ms, xb)
                optimizer.zero_grad(set_to_none=True)
                logits = model(xb)
                loss = loss_of(ms, logits, yb)
                loss.backward()
                optimizer.step()
                step += 1
                if step % log_every == 0:  # the only host sync inside the epoch
                    log_step(ms, loss, logits, yb, xb, epoch, step)
                    if not ms.running():
                        break
                if received:
                    signum = received[0]
                    break
            if signum:
                raise interrupt(ms, Position(epoch, step, order, b + 1), signum)
            if ms.running():
                end_epoch(ms, epoch, step, epochs)
            if not ms.running():
                break
    for k in ms.running():
        finish(ms, k, epoch, step)


def start(ms: Members) -> Position:
    """Resume the members that have a last.pt to go on from; open every member's writer."""
    resumed = [k for k, m in enumerate(ms.members) if m.cfg.get("resume")]
    for k in resumed:
        report = finished_report(ms.members[k].out)
        if report is not None and ms.stacked:
            ms.members[k].status, ms.members[k].report = "diverged", report
    with_checkpoint = [k for k in resumed if (ms.members[k].out / "last.pt").is_file() or ms.members[k].status == "running"]
    for m in ms.members:
        m.flow = GradientFlow(m.view) if m.cfg.diagnostics else None
    at = restore(ms, with_checkpoint) if with_checkpoint else Position()
    for k in with_checkpoint:
        m = ms.members[k]
        if m.status == "running":
            drop_newer_best(m.out / "best.pt", at.epoch)
            log.info("resuming %s at epoch %d (step %d)", m.out, at.epoch, at.step, extra=about(m))
            after_last_event_file(m.out)
    for m in ms.members:
        if m.status != "running":
            continue
        announce(m.out, extra=about(m))
        # purge_step hides what a killed run logged after its last checkpoint: no duplicated steps.
        m.writer = open_writer(m.out, purge_step=at.step + 1 if at.step else None)
        if m.flow:
            m.writer.add_custom_scalars(custom_scalars_layout(len(m.flow.linears), m.cfg.model.activation, hasattr(ms.optimizer, "effective_step")))
    for k in ms.running():
        if ms.members[k].stopper.should_stop:  # resumed after its early stop: it stays stopped
            log.info("stopped early at epoch %d before; not trained further", at.epoch - 1, extra=about(ms.members[k]))
            finish(ms, k, at.epoch - 1, at.step)
    return at


def about(m: Member) -> dict:
    """A log record's `extra` for a line about one network: a log file may keep only its own."""
    return {"run_dir": m.out}


def finished_report(run_dir: Path) -> dict | None:
    """A diverged member's metrics.json: resumed with the others, it stays as it ended (its
    last.pt is from before it diverged, at another point than theirs)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    return report if report.get("status") == "diverged" else None


def draw_order(ms: Members, n: int) -> torch.Tensor:
    """This epoch's batch order: (n,), or (K, n) with each member's from its own generator."""
    if not ms.stacked:
        return torch.randperm(n, device=ms.device, generator=ms.members[0].shuffle)
    return torch.stack([torch.randperm(n, device=ms.device, generator=m.shuffle) for m in ms.members])


def augment(ms: Members, xb: torch.Tensor) -> torch.Tensor:
    """Each member's transforms from its own stream (dltips.data.Augment), applied in one call
    where the members share their data's normalization."""
    if not ms.stacked:
        m = ms.members[0]
        return m.augment(xb, m.shuffle)
    drawn = [(k, m.augment.draw(xb.shape[1], ms.device, m.shuffle)) for k, m in enumerate(ms.members) if m.augment.enabled]
    if not drawn:
        return xb
    if len(drawn) == len(ms.members) and ms.x.dim() == 2:
        angle, shift = (torch.cat(t) for t in zip(*(d for _, d in drawn)))
        return ms.members[0].augment.apply(xb.flatten(0, 1), angle, shift).view(xb.shape)
    xb = xb.clone()
    for k, (angle, shift) in drawn:
        xb[k] = ms.members[k].augment.apply(xb[k], angle, shift)
    return xb


def loss_of(ms: Members, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """The loss to differentiate. Stacked, Σ_k C_k: member k's gradient is that of its own mean
    loss, ∂(Σ_j C_j)/∂θ_k = ∂C_k/∂θ_k."""
    if not ms.stacked:
        return ms.loss_fn(logits, yb)
    return ms.loss_fn(logits.flatten(0, 1), yb.flatten()) * len(ms.members)


def log_step(ms: Members, loss: torch.Tensor, logits: torch.Tensor, yb: torch.Tensor, xb: torch.Tensor, epoch: int, step: int) -> None:
    """Each running member's mini-batch loss, step sizes and diagnostics; a member whose loss
    is no longer finite has diverged and is finished here."""
    with torch.no_grad():
        losses = loss.detach().view(1) if not ms.stacked else torch.stack([ms.loss_fn(z, t) for z, t in zip(logits, yb)])
        values = {TRAIN_LOSS: losses} | member_step_sizes(ms)
        columns = dict(zip(values, torch.stack(list(values.values())).tolist()))
    if ms.stacked and any(m.flow for m in ms.members):
        tie_grads([m.view for m in ms.members], ms.model)
    for k in ms.running():
        m = ms.members[k]
        if not math.isfinite(columns[TRAIN_LOSS][k]):
            m.status, m.message = "diverged", f"loss became {columns[TRAIN_LOSS][k]} at step {step} (epoch {epoch})"
            finish(ms, k, epoch, step)
            continue
        diagnostics = m.flow.measure(xb[k] if ms.stacked else xb, step) if m.flow else {}
        log_scalars(m.writer, {tag: column[k] for tag, column in columns.items()} | diagnostics, step)


@torch.no_grad()
def member_step_sizes(ms: Members) -> dict[str, torch.Tensor]:
    """diagnostics.step_sizes for every member: tag -> (members,)."""
    if not ms.stacked:
        return {tag: v.view(1) for tag, v in step_sizes(ms.optimizer, ms.model).items()}
    if not hasattr(ms.optimizer, "effective_step"):
        return {}
    layers = [m for m in ms.model.modules() if isinstance(m, StackedLinear)]
    steps = {i: ms.optimizer.effective_step(layer.weight) for i, layer in enumerate(layers, start=1)}
    return {per_layer(OPTIM, i, "step_size_layer"): step.mean(dim=(1, 2)) for i, step in steps.items() if step is not None}


def end_epoch(ms: Members, epoch: int, step: int, epochs) -> None:
    """Evaluate every running member on the training and validation sets, log, checkpoint, and
    finish those that diverged or stopped early."""
    done: list[float] = []
    for k in ms.running():
        m = ms.members[k]
        # The lecture's first check is the training set itself, so measure it like val: eval mode.
        metrics = {f"train/{key}": v for key, v in evaluate(m.view, ms.loss_fn, *m.splits.train).items()}
        metrics |= {f"val/{key}": v for key, v in evaluate(m.view, ms.loss_fn, *m.splits.val).items()}
        if not math.isfinite(metrics["train/loss"]):
            m.status, m.message = "diverged", f"training loss became {metrics['train/loss']} in epoch {epoch} (by step {step})"
            finish(ms, k, epoch, step)
            continue
        log_epoch(m.writer, metrics, epoch, step, member_lr(ms, k), m.view, m.cfg.trainer.weight_histograms)
        if m.flow:
            log_gradient_flow(m.writer, m.flow, epoch, step, m.cfg.trainer.max_epochs)
        improved = m.stopper.update(epoch, metrics, m.view)
        state = lambda k=k: member_checkpoint(ms, k, Position(epoch, step))  # noqa: E731 (built only if written)
        write_checkpoints(m.out, state, m.writer, ms.saver, due(epoch, m.cfg.trainer) or m.stopper.should_stop, improved)
        done.append(metrics["val/acc"])
        if isinstance(epochs, tqdm) and not ms.stacked:
            epochs.set_postfix(loss=f"{metrics['train/loss']:.4f}", val_acc=f"{metrics['val/acc']:.4f}")
        line = ("epoch %d: loss %.4f val/loss %.4f val/acc %.4f", epoch, metrics["train/loss"], metrics["val/loss"], metrics["val/acc"])
        log_to_file(epochs, *line, run_dir=m.out if ms.stacked else None)
        if m.stopper.should_stop:
            log.info("early stopping at epoch %d; best %s at epoch %d (%s)", epoch, m.stopper.monitor, m.stopper.best_epoch, m.out, extra=about(m))
            finish(ms, k, epoch, step)
    if ms.stacked and done:
        if isinstance(epochs, tqdm):
            epochs.set_postfix(val_acc=f"{sum(done) / len(done):.4f}")
        log_to_file(epochs, "epoch %d: val/acc mean %.4f (min %.4f, max %.4f) over %d networks", epoch, sum(done) / len(done), min(done), max(done), len(done))


def interrupt(ms: Members, at: Position, signum: int) -> Interrupted:
    """A signal: every running member writes last.pt where the epoch stopped and an
    `interrupted` metrics.json; returns the Interrupted to raise."""
    err = None
    for k in ms.running():
        m = ms.members[k]
        write_checkpoints(m.out, lambda k=k: member_checkpoint(ms, k, at), m.writer, ms.saver, last=True, best=False)
        m.writer.close()
        ms.saver.wait()  # last.pt on disk before metrics.json says how to resume from it
        err = record_interrupted(m.out, signum, at.epoch, at.step, time.perf_counter() - ms.started)
    return err


def finish(ms: Members, k: int, epoch: int, step: int) -> None:
    """Member k is done (completed, stopped early or diverged): test it, write its metrics.json
    and hparams, close its writer."""
    m = ms.members[k]
    status = "diverged" if m.status == "diverged" else "completed"
    if m.stopper.patience is not None and m.stopper.best_state is not None:
        m.view.load_state_dict(m.stopper.best_state)  # early stopping keeps the best weights
    m.final_state = {name: t.detach().clone() for name, t in m.view.state_dict().items()}
    final: dict[str, float] = {}
    for split in ("train", "val", "test"):
        final |= {f"{split}/{key}": v for key, v in evaluate(m.view, ms.loss_fn, *getattr(m.splits, split)).items()}
    final |= ends(epoch, step, m.stopper)
    log_end(m.writer, final, step, status)
    if status == "diverged":
        kept = "the last good checkpoint is kept" if (m.out / "last.pt").is_file() else "no checkpoint was written before"
        log.warning("diverged: %s; the learning rate is likely too high (%s; %s)", m.message, kept, m.out, extra=about(m))
        final = without_results(final)
    report = {"status": status, "message": m.message, "stopped_early": m.stopper.should_stop, "metrics": final}
    if m.cfg.eval_subnetworks and status == "completed":  # dropout ≈ an ensemble of its sub-networks
        report["subnetworks"] = subnetwork_curve(m.view, *m.splits.test, generator=m.dropout_rng)
        log_curve(m.writer, report["subnetworks"], "dropout")
    write_session(m.writer, collect_hparams(m.cfg, m.context.choices, m.context.overrides, m.context.plan), status)
    m.writer.close()
    report["time_s"] = time.perf_counter() - ms.started
    ms.saver.wait()  # its checkpoints on disk before metrics.json says it finished
    write_json(m.out / "metrics.json", report)
    m.status, m.report = status, report
    log.info("%s: test/acc %.4f test/loss %.4f; %s (%s)", status, final["test/acc"], final["test/loss"], best_epoch_text(m.stopper), m.out, extra=about(m))


def member_lr(ms: Members, k: int) -> float:
    """Member k's learning rate now (its first parameter group's)."""
    lr = ms.optimizer.param_groups[0]["lr"]
    return float(lr[k]) if torch.is_tensor(lr) and lr.dim() else float(lr)


def command_line_overrides(cfg: DictConfig) -> list[str] | None:
    """What the command line changed next to `resume`, for resume_config to check; None for
    Python callers. A sweep job re-run into its own directory (dltips.run.rundir.attempt_to_redo)
    goes on with the overrides it was started with: nothing is changed."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN and cfg.get("resume") and Path(cfg.resume).resolve() == Path(hydra_cfg.runtime.output_dir).resolve():
        return []
    return list(hydra_cfg.overrides.task)


def hydra_context() -> tuple[dict[str, str], list[str], Plan | None]:
    """The config groups chosen, the command-line overrides and, in a sweep, the sweep's plan
    (dltips.config.plan), when run through Hydra."""
    if not HydraConfig.initialized():
        return {}, [], None
    hydra_cfg = HydraConfig.get()
    choices = chosen_groups(hydra_cfg.runtime.choices)
    plan = Plan.load(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None
    return choices, list(hydra_cfg.overrides.task), plan


def main() -> None:
    """`python -m dltips.train`: the `dltips-train` command."""
    from dltips.launch.cli import main as command

    command()


if __name__ == "__main__":
    main()
