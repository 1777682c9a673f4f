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
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from dltips import checkpoint
from dltips.build import Setup, build_model, build_optimizer, compile_model, setup
from dltips.config import ConfigError, config_errors
from dltips.early_stopping import EarlyStopping
from dltips.diagnostics import GradientFlow, custom_scalars_layout, log_gradient_flow
from dltips.ensemble import dropout_ensemble_curve, explicit_ensemble_curve, log_curve
from dltips.hparams import collect_hparams, write_session
from dltips.logger import log_scalars, open_writer, write_json
from dltips.nn.stacked import StackedLinear, member_optimizer_state, member_state, stack, tie, tie_grads
from dltips.optim import Adagrad, Momentum
from dltips.interrupt import record_interrupted, signals_caught
from dltips.resume import Position, trained_with
from dltips.rundir import owned
from dltips.threads import use_threads
from dltips.tags import OPTIM, per_layer
from dltips.train import (
    due,
    ends,
    evaluate,
    hydra_context,
    log_end,
    log_epoch,
    log_to_file,
    without_results,
    progress,
    set_lr,
    write_checkpoints,
    write_config,
)

log = logging.getLogger("dltips")


# Optimizers whose update of a weight reads only that weight's gradient and state: stacking
# members into one tensor changes nothing. (Adafactor's factored statistics or LBFGS would not.)
ELEMENTWISE = (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad, Adagrad, Momentum,
)  # fmt: skip


def fork_generator(device: torch.device) -> torch.Generator:
    """A generator in the state the device's default generator is in now."""
    g = torch.Generator(device=device)
    g.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return g


def setup_ensemble(cfg: DictConfig) -> tuple[Setup, list[torch.Generator], list[nn.Module]]:
    """The single-run setup (every check included), with the model and optimizer replaced by
    the K members stacked; returns it, each member's dropout generator and the members as
    plain networks tied to the stacked weights."""
    s = setup(cfg)
    with config_errors():
        models, dropout_rngs = [], []
        for k in range(cfg.trainer.ensemble):
            models.append(build_model(cfg, s.splits, s.device, cfg.seed + k))
            dropout_rngs.append(fork_generator(s.device))  # where member k alone would start drawing
        model = compile_model(stack(models, dropout_rngs), cfg.trainer.compile)
        optimizer = build_optimizer(cfg, model)
        if not isinstance(optimizer, ELEMENTWISE):
            raise ConfigError(
                f"Invalid optimizer._target_: {cfg.optimizer._target_!r}; allowed with trainer.ensemble > 1: an "
                "element-wise optimizer (its update of one weight reads no other weight, so members stay apart): "
                + ", ".join(f"{t.__module__}.{t.__name__}" for t in ELEMENTWISE)
            )
        tie(models, model)
        return dataclasses.replace(s, model=model, optimizer=optimizer), dropout_rngs, models


def member_dir(out: Path, k: int) -> Path:
    return out / f"member_{k:02d}"


def member_config(cfg: DictConfig, k: int, out: Path) -> DictConfig:
    """The config that trains member k alone: its own seed, the ensemble's data split."""
    member = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))  # split_seed: ${seed} → a number
    member.seed, member.trainer.ensemble = cfg.seed + k, 1
    member.output_dir = str(member_dir(out, k))
    return member


def split_metrics(s: Setup, views: list[nn.Module], splits: tuple[str, ...]) -> list[dict[str, float]]:
    """{"train/loss": …, "val/acc": …} for every member over the named splits, by train.evaluate."""
    return [
        {f"{split}/{name}": v for split in splits for name, v in evaluate(view, s.loss_fn, *getattr(s.splits, split)).items()}
        for view in views
    ]


@torch.no_grad()
def member_step_sizes(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, torch.Tensor]:
    """diagnostics.step_sizes for every member at once: tag -> (members,)."""
    if not hasattr(optimizer, "effective_step"):
        return {}
    layers = [m for m in model.modules() if isinstance(m, StackedLinear)]
    steps = {i: optimizer.effective_step(layer.weight) for i, layer in enumerate(layers, start=1)}
    return {per_layer(OPTIM, i, "step_size_layer"): step.mean(dim=(1, 2)) for i, step in steps.items() if step is not None}


@dataclass
class Members:
    """Per-member state of an ensemble run: where it writes and how far it got."""

    configs: list[DictConfig]
    writers: list[SummaryWriter]
    shuffles: list[torch.Generator]  # batch order and augmentation, as `shuffle` in train()
    dropout_rngs: list[torch.Generator]  # torch's default generator in a run alone
    views: list[nn.Module]  # each member as a plain network on its slice of the stacked weights
    flows: list[GradientFlow] | None  # diagnostics=true: each member's, as a run alone has one
    stoppers: list[EarlyStopping]
    status: list[str]
    message: list[str]
    finals: list[dict[str, float] | None]

    def running(self) -> list[int]:
        return [k for k, st in enumerate(self.status) if st == "completed"]

    def dir(self, k: int) -> Path:
        return Path(self.configs[k].output_dir)


def member_checkpoint(s: Setup, m: Members, k: int, at: Position) -> dict:
    """What resume.checkpoint_state holds for a run alone: member k's weights, optimizer state
    and random streams (its dropout generator stands in for torch's default one); inside an
    interrupted epoch, its own row of the batch order."""
    rng = checkpoint.rng_state(m.shuffles[k])
    if s.device.type == "cuda":
        rng["cuda"][s.device.index or torch.cuda.current_device()] = m.dropout_rngs[k].get_state()
    else:
        rng["torch"] = m.dropout_rngs[k].get_state()
    return {
        "epoch": at.epoch,
        "step": at.step,
        "order": at.order[k] if at.order is not None else None,
        "batch": at.batch,
        "config": trained_with(m.configs[k]),
        "model": member_state(s.model.state_dict(), k),
        "optimizer": member_optimizer_state(s.optimizer, k),
        "early_stopping": m.stoppers[k].state_dict(),
        "initial_weights": m.flows[k].initial if m.flows else [],
        "gradient_flow": m.flows[k].history() if m.flows else None,
        "rng": rng,
    }


def open_members(cfg: DictConfig, s: Setup, dropout_rngs: list[torch.Generator], views: list[nn.Module]) -> Members:
    out = Path(cfg.output_dir)
    write_config(cfg, out)
    configs = [member_config(cfg, k, out) for k in range(cfg.trainer.ensemble)]
    for member in configs:
        write_config(member, Path(member.output_dir))
    n = len(configs)
    members = Members(
        configs=configs,
        writers=[open_writer(member.output_dir) for member in configs],
        shuffles=[torch.Generator(device=s.device).manual_seed(member.seed) for member in configs],
        dropout_rngs=dropout_rngs,
        views=views,
        flows=[GradientFlow(view) for view in views] if cfg.diagnostics else None,
        stoppers=[instantiate(cfg.regularizer.early_stopping) for _ in configs],
        status=["completed"] * n,
        message=[""] * n,
        finals=[None] * n,
    )
    for writer, flow in zip(members.writers, members.flows or []):
        writer.add_custom_scalars(custom_scalars_layout(len(flow.linears), cfg.model.activation, hasattr(s.optimizer, "effective_step")))
    return members


def stop_member(s: Setup, m: Members, k: int, why: str, epoch: int, step: int) -> None:
    """What train() does for a diverging run alone: stop it here, with the metrics it has now."""
    m.status[k], m.message[k] = "diverged", why
    m.finals[k] = without_results(split_metrics(s, [m.views[k]], ("train", "val", "test"))[0] | ends(epoch, step, m.stoppers[k]))
    log.warning("member %d diverged: %s", k, why)


def train_epoch(cfg: DictConfig, s: Setup, m: Members, epoch: int, step: int, base_lrs: list[float], received: list[int]) -> tuple[int, Position | None]:
    """One epoch of every member, as train()'s inner loop runs it alone; returns the step and,
    when a signal came, where the epoch stopped (resume.Position)."""
    model, optimizer, loss_fn, (x, y), n = s.model, s.optimizer, s.loss_fn, s.splits.train, len(m.configs)
    per_step, log_every = cfg.scheduler.interval == "step", cfg.trainer.log_every_n_steps
    if not per_step:
        set_lr(optimizer, base_lrs, s.schedule(epoch))
    model.train()
    order = torch.stack([torch.randperm(len(y), device=s.device, generator=g) for g in m.shuffles])
    for b, idx in enumerate(order.split(cfg.data.batch_size, dim=1)):  # idx: (members, batch), each its own order
        if per_step:
            set_lr(optimizer, base_lrs, s.schedule(step))
        xb, yb = x[idx], y[idx]
        if s.augment.enabled:  # each member's transforms from its own stream, applied in one call
            angle, shift = (torch.cat(t) for t in zip(*(s.augment.draw(idx.shape[1], s.device, g) for g in m.shuffles)))
            xb = s.augment.apply(xb.flatten(0, 1), angle, shift).view(xb.shape)
        optimizer.zero_grad(set_to_none=True)
        logits = model(xb)
        # Σ_k C_k: each member's gradient is that of its own mean loss, ∂(Σ_k C_k)/∂θ_k = ∂C_k/∂θ_k.
        loss = loss_fn(logits.flatten(0, 1), yb.flatten()) * n
        loss.backward()
        optimizer.step()
        step += 1
        if step % log_every == 0:  # the only host sync inside the epoch
            values = {"train/loss": torch.stack([loss_fn(z, t) for z, t in zip(logits.detach(), yb)])}
            values |= member_step_sizes(optimizer, model)
            columns = dict(zip(values, torch.stack(list(values.values())).tolist()))
            if m.flows:
                tie_grads(m.views, model)
            for k in m.running():
                if not math.isfinite(columns["train/loss"][k]):
                    stop_member(s, m, k, f"loss became {columns['train/loss'][k]} at step {step} (epoch {epoch})", epoch, step)
                else:
                    m.writers[k].add_scalar("train/loss", columns["train/loss"][k], step)
                    diagnostics = m.flows[k].measure(xb[k], step) if m.flows else {}
                    log_scalars(m.writers[k], {tag: col[k] for tag, col in columns.items() if tag != "train/loss"} | diagnostics, step)
        if received:
            return step, Position(epoch, step, order, b + 1)
    return step, None


def end_epoch(cfg: DictConfig, s: Setup, m: Members, epoch: int, step: int) -> list[float]:
    """Evaluate, log and checkpoint every running member; returns their val/acc."""
    running = m.running()
    rows = dict(zip(running, split_metrics(s, [m.views[k] for k in running], ("train", "val"))))
    for k in running:
        metrics = rows[k]
        if not math.isfinite(metrics["train/loss"]):
            stop_member(s, m, k, f"training loss became {metrics['train/loss']} in epoch {epoch} (by step {step})", epoch, step)
            continue
        log_epoch(m.writers[k], metrics, epoch, step, s.optimizer, m.views[k], cfg.trainer.weight_histograms)
        if m.flows:
            log_gradient_flow(m.writers[k], m.flows[k], epoch, step, cfg.trainer.max_epochs)
        improved = m.stoppers[k].update(epoch, metrics, None)

        def state(k=k) -> dict:
            return member_checkpoint(s, m, k, Position(epoch, step))

        write_checkpoints(m.dir(k), state, m.writers[k], due(epoch, cfg.trainer), improved)
    return [rows[k]["val/acc"] for k in m.running()]


def train_ensemble(cfg: DictConfig) -> dict[str, float]:
    """train() for K stacked members; returns the mean metrics of the members that completed and
    their explicit ensemble's test accuracy and NLL (`ensemble/test/acc`, `ensemble/test/nll`)."""
    s, dropout_rngs, views = setup_ensemble(cfg)  # every bad value is reported here, before anything is written
    use_threads(cfg.trainer.threads, s.model)
    out = Path(cfg.output_dir)
    with owned(out, *(member_dir(out, k) for k in range(cfg.trainer.ensemble))):  # one process per run directory
        return fit_ensemble(cfg, s, dropout_rngs, views)


def fit_ensemble(cfg: DictConfig, s: Setup, dropout_rngs: list[torch.Generator], views: list[nn.Module]) -> dict[str, float]:
    """train_ensemble() once its config is checked and its directories are its own: the loop."""
    started = time.perf_counter()
    m = open_members(cfg, s, dropout_rngs, views)
    base_lrs = [group["initial_lr"] for group in s.optimizer.param_groups]
    step, epoch = 0, -1
    epochs = progress(range(cfg.trainer.max_epochs), cfg.trainer.progress)
    with signals_caught() as received:
        for epoch in epochs:
            step, stopped = train_epoch(cfg, s, m, epoch, step, base_lrs, received)
            if stopped is not None:
                return interrupt_members(s, m, stopped, received[0], started)
            val = end_epoch(cfg, s, m, epoch, step) if m.running() else []
            if not val:
                break  # every member diverged
            if isinstance(epochs, tqdm):
                epochs.set_postfix(val_acc=f"{sum(val) / len(val):.4f}")
            log_to_file(epochs, "epoch %d: val/acc mean %.4f (min %.4f, max %.4f) over %d members", epoch, sum(val) / len(val), min(val), max(val), len(val))
    return finish(cfg, s, m, epoch, step, started)


def interrupt_members(s: Setup, m: Members, at: Position, signum: int, started: float):
    """A signal: every running member writes last.pt where the epoch stopped (each resumes
    alone, `resume=<run>/member_03`) and an `interrupted` metrics.json; raises Interrupted."""
    for k in m.running():
        m.writers[k].flush()
        checkpoint.save(m.dir(k) / "last.pt", member_checkpoint(s, m, k, at))
        m.writers[k].close()
        record_interrupted(m.dir(k), signum, at.epoch, at.step)
    # The ensemble's own record points to a member: an ensemble is not resumed as a whole.
    raise record_interrupted(m.dir(0).parent, signum, at.epoch, at.step, time.perf_counter() - started, resume=m.dir(0))


def finish(cfg: DictConfig, s: Setup, m: Members, epoch: int, step: int, started: float) -> dict[str, float]:
    """Test every member, write its metrics.json and hparams, and the ensemble's summary."""
    n = len(m.configs)
    done = m.running()
    finished = dict(zip(done, split_metrics(s, [m.views[k] for k in done], ("train", "val", "test"))))
    choices, overrides, plan = hydra_context()
    for k, member in enumerate(m.configs):
        final = m.finals[k] = m.finals[k] or finished[k] | ends(epoch, step, m.stoppers[k])
        log_end(m.writers[k], final, int(final["steps"]), m.status[k])
        report = {"status": m.status[k], "message": m.message[k], "stopped_early": False, "metrics": final}
        if cfg.ensemble_eval and k in done:  # the sub-networks drawn from where its masks stopped
            report["ensemble"] = dropout_ensemble_curve(m.views[k], *s.splits.test, generator=m.dropout_rngs[k])
            log_curve(m.writers[k], report["ensemble"], "dropout")
        write_session(m.writers[k], collect_hparams(member, choices, overrides, plan), m.status[k])
        m.writers[k].close()
        report["time_s"] = time.perf_counter() - started  # the whole ensemble's, so far
        write_json(m.dir(k) / "metrics.json", report)

    # The mean and the explicit ensemble over the members that completed: a diverged one's NaNs
    # would say nothing about the others.
    curve = explicit_ensemble_curve([m.views[k] for k in done], *s.splits.test) if done else []
    keys = list(m.finals[0])
    summary = {key: sum(m.finals[k][key] for k in done) / len(done) if done else math.nan for key in keys}
    summary |= {
        "ensemble/test/acc": curve[-1]["arithmetic/acc"] if curve else math.nan,
        "ensemble/test/nll": curve[-1]["arithmetic/nll"] if curve else math.nan,
        "members_completed": len(done),
    }
    report = {
        "status": "completed" if len(done) == n else "diverged",
        "members": {m.dir(k).name: m.status[k] for k in range(n)},
        "metrics": summary,
        "explicit_ensemble": curve,
        "time_s": time.perf_counter() - started,
    }
    write_json(Path(cfg.output_dir) / "metrics.json", report)
    log.info(
        "%d/%d members completed: test/acc mean %.4f, their ensemble %.4f (%s)",
        len(done), n, summary["test/acc"], summary["ensemble/test/acc"], cfg.output_dir,
    )  # fmt: skip
    return summary
