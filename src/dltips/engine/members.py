"""The networks one training loop trains: one network, or K stacked into one module.

Both offer the same operations (batch order, batch, augment, loss, per-network losses, step
sizes, learning rate, evaluation, state and load_state), so the loop calls them without asking which it
has; the choice is made once, when they are built (dltips.engine.build). K = 1 is the plain
network, not a stack of one: a (B, F) step is about 20% cheaper than a (1, B, F) one.

Members of a stack share what makes a step one computation and may differ in what leaves the
parameter shapes alone (dltips.config.stackable). Each keeps its own run directory, random
streams, early stopping and results, so member k equals its config trained alone, to float
tolerance. A member that is done (stopped early, diverged) leaves the stack at the epoch's end,
so a stack computes only the networks still training.

A per-network quantity (a loss, a norm, a clip) is computed per network: over a stack's
(K, out, in) weights, `clip_grad_norm_` or a norm would mix the K networks silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from dltips.data import Augment, Splits
from dltips.early_stopping import EarlyStopping
from dltips.engine.evaluate import EVAL_ROWS, evaluate_splits
from dltips.nn.stacked import StackedLinear, keep_members, member_state, tie, tie_grads
from dltips.observe.diagnostics import GradientFlow, step_sizes
from dltips.observe.tags import OPTIM, per_layer
from dltips.optim.per_member import keep_optimizer_members, member_optimizer_state, stacked_optimizer_state


@dataclass(frozen=True)
class HydraContext:
    """What Hydra chose for a job: its config groups, command-line overrides and sweep plan,
    and the cores it may use when its launcher runs jobs side by side (None: all of torch's)."""

    choices: dict = field(default_factory=dict)
    overrides: list = field(default_factory=list)
    plan: object = None
    cores: int | None = None


@dataclass
class Member:
    """One network's own part of the training: where it writes and how far it got."""

    cfg: DictConfig
    context: HydraContext
    splits: Splits
    augment: Augment
    schedule: Callable[[int], float]
    stopper: EarlyStopping
    view: nn.Module  # the network as a plain module: the model itself, or its slice of the stack
    shuffle: torch.Generator  # batch order and augmentation
    dropout_rng: torch.Generator | None  # stacked: stands in for torch's default generator
    flow: GradientFlow | None = None
    # Written by the recorder (dltips.engine.recorder) only:
    writer: SummaryWriter | None = None
    done: bool = False  # its metrics.json is written
    report: dict | None = None  # that metrics.json
    final_state: dict | None = None  # its weights when it finished (a stack's slice trains on)
    recorded: dict | None = None  # run.resume.trained_with(cfg), the same in every checkpoint

    @property
    def out(self) -> Path:
        return Path(self.cfg.output_dir)


@dataclass
class Networks:
    """What the loop trains: the model, its optimizer, and each member's own part."""

    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    members: list[Member]
    x: torch.Tensor  # training inputs: (N, F), or (S, N, F) when the members' splits differ
    y: torch.Tensor  # (N,) or (S, N)
    stacked_splits: dict = field(default_factory=dict)  # split name -> (S, N, F), (S, N): built once

    def __post_init__(self) -> None:
        # The members computed, in the order of the model's slices: all K until some are done
        # and leave (Stack.drop_done); S = len(live). Everything the loop and the recorder see is
        # indexed by member, k = 0 … K-1, whatever its slice.
        self.live = list(range(len(self.members)))

    @property
    def cfg(self) -> DictConfig:
        """What the members share (architecture, data set, batch size, trainer): the first's config."""
        return self.members[0].cfg

    def running(self) -> list[int]:
        return [k for k, m in enumerate(self.members) if not m.done]

    def schedule(self, t: int) -> float | torch.Tensor:
        """The learning-rate factor at step or epoch t."""
        return self.members[0].schedule(t)

    def slice_of(self, k: int) -> int:
        """Where member k is in the model's slices (and in every (S, …) tensor of the step)."""
        return self.live.index(k)

    def lr(self, k: int) -> float:
        """Member k's learning rate now (its first parameter group's)."""
        lr = self.optimizer.param_groups[0]["lr"]
        return float(lr[self.slice_of(k)]) if torch.is_tensor(lr) and lr.dim() else float(lr)

    def evaluate(self, names: tuple[str, ...]) -> dict[int, dict[str, float]]:
        """Each running network's `train/loss`, `train/acc`, … on the named whole splits (eval
        mode), through its own view: plain products over the whole split, as alone."""
        return {
            k: evaluate_splits(self.members[k].view, self.loss_fn, self.members[k].splits, names)
            for k in self.running()
        }

    def drop_done(self) -> None:
        """Networks that are done stop costing compute (an epoch's end: see Stack)."""


class One(Networks):
    """One network: batches (B, F), a scalar loss, the optimizer's state as it is."""

    def order(self) -> torch.Tensor:
        """This epoch's batch order, (N,)."""
        m = self.members[0]
        return torch.randperm(self.y.shape[-1], device=self.device, generator=m.shuffle)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[idx], self.y[idx]

    def augment(self, xb: torch.Tensor) -> torch.Tensor:
        m = self.members[0]
        return m.augment(xb, m.shuffle)

    def loss(self, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(logits, yb)

    @torch.no_grad()
    def losses(self, loss: torch.Tensor, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Each network's mini-batch loss, (K,)."""
        return loss.detach().view(1)

    @torch.no_grad()
    def step_sizes(self) -> dict[str, torch.Tensor]:
        """dltips.observe.diagnostics.step_sizes of each network: tag -> (K,)."""
        return {tag: v.view(1) for tag, v in step_sizes(self.optimizer, self.model).items()}

    def per_network(self, xb: torch.Tensor) -> list[torch.Tensor]:
        """Each network's part of a batch, with its gradients in its own view's .grad (for
        diagnostics, which measure one plain network at a time)."""
        return [xb]

    def states(self, order: torch.Tensor | None) -> Callable[[int], dict]:
        """Network k's weights, optimizer state and batch order at this point of training, as a
        run alone saves them, for any k (what they share read once): views of the tensors being
        trained, to be copied before they are kept."""
        return lambda k: {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "order": order}

    def load_state(self, states: dict[int, dict], source: int) -> torch.Tensor | None:
        """Load the saved states (network k -> its checkpoint); returns the interrupted epoch's
        batch order, if any (`source`: a network still training)."""
        self.model.load_state_dict(states[0]["model"])
        self.optimizer.load_state_dict(states[0]["optimizer"])
        return states[0].get("order")


class Stack(Networks):
    """K networks as one: batches (S, B, F), each member its own rows, order and stream; the
    loss to differentiate is Σ_k C_k, whose gradient for member k is that of its own C_k. A
    member that is done (stopped early, diverged) leaves at the epoch's end: its slice of the
    weights, optimizer state and data goes, and the S members left are computed."""

    one_schedule: bool = True  # every member's schedule is the same: computed once per step

    @property
    def computed(self) -> list[Member]:
        """The members in the stack, in the order of its slices."""
        return [self.members[k] for k in self.live]

    def schedule(self, t: int) -> float | torch.Tensor:
        """The learning-rate factor at step or epoch t: one number, or one per slice."""
        if self.one_schedule:
            return self.members[0].schedule(t)
        return torch.tensor([m.schedule(t) for m in self.computed], device=self.device)

    def order(self) -> torch.Tensor:
        """(S, N): each member's from its own generator."""
        n = self.y.shape[-1]
        return torch.stack([torch.randperm(n, device=self.device, generator=m.shuffle) for m in self.computed])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels for batch indices (S, B): each member its own rows. One
        index_select over the rows of the flattened data, 3× faster than x[idx] (and than
        x[rows, idx] over members' own splits): advanced indexing is a general gather."""
        s, b = idx.shape
        if self.x.dim() == 3:  # slice s's row i is row s·N + i of the flattened (S·N, F)
            n = self.y.shape[-1]
            idx = idx + torch.arange(0, s * n, n, device=idx.device).unsqueeze(1)
        flat = idx.flatten()
        x, y = self.x.flatten(0, -2), self.y.flatten()
        return x.index_select(0, flat).view(s, b, *x.shape[1:]), y.index_select(0, flat).view(s, b)

    def augment(self, xb: torch.Tensor) -> torch.Tensor:
        """Each member's transforms from its own stream, applied in one call where the members
        share their data's normalization."""
        ms = self.computed
        drawn = [
            (k, m.augment.draw(xb.shape[1], self.device, m.shuffle)) for k, m in enumerate(ms) if m.augment.enabled
        ]
        if not drawn:
            return xb
        if len(drawn) == len(ms) and self.x.dim() == 2:
            angle, shift = (torch.cat(t) for t in zip(*(d for _, d in drawn)))
            return ms[0].augment.apply(xb.flatten(0, 1), angle, shift).view(xb.shape)
        xb = xb.clone()
        for k, (angle, shift) in drawn:
            xb[k] = ms[k].augment.apply(xb[k], angle, shift)
        return xb

    def loss(self, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        # The mean over S·B rows times S is Σ_k (mean over member k's B rows) = Σ_k C_k.
        return self.loss_fn(logits.flatten(0, 1), yb.flatten()) * logits.shape[0]

    @torch.no_grad()
    def losses(self, loss: torch.Tensor, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return self.by_member(torch.stack([self.loss_fn(z, t) for z, t in zip(logits, yb)]))

    def by_member(self, values: torch.Tensor) -> torch.Tensor:
        """(S,) values, one per slice, as (K,) by member: NaN for those that left."""
        if len(self.live) == len(self.members):
            return values
        out = values.new_full((len(self.members),), math.nan)
        out[self.live] = values
        return out

    @torch.no_grad()
    def step_sizes(self) -> dict[str, torch.Tensor]:
        if not hasattr(self.optimizer, "effective_step"):
            return {}
        layers = [m for m in self.model.modules() if isinstance(m, StackedLinear)]
        steps = {i: self.optimizer.effective_step(layer.weight) for i, layer in enumerate(layers, start=1)}
        # Per member: the mean over its own (out, in) slice, never over the stack.
        return {
            per_layer(OPTIM, i, "step_size_layer"): self.by_member(s.mean(dim=(1, 2)))
            for i, s in steps.items()
            if s is not None
        }

    def per_network(self, xb: torch.Tensor) -> list[torch.Tensor | None]:
        tie_grads([m.view for m in self.computed], self.model)
        inputs: list[torch.Tensor | None] = [None] * len(self.members)
        for s, k in enumerate(self.live):
            inputs[k] = xb[s]
        return inputs

    @torch.no_grad()
    def evaluate(self, names: tuple[str, ...]) -> dict[int, dict[str, float]]:
        """One forward pass of the whole stack per chunk of rows instead of one per member: a
        small network's evaluation costs the per-call overhead K times otherwise. Each member's
        loss is its own loss function's over its own rows, as alone. (Scoring each member
        through its own view, Networks.evaluate, is 20% faster in isolation on a CPU, but no
        faster in a whole 64-member run.)"""
        self.model.eval()
        scores: dict[int, dict[str, float]] = {k: {} for k in self.running()}
        for split in names if scores else ():  # all diverged at a logged step: nothing to score
            x, y = self.stacked(split)
            chunk = max(1, EVAL_ROWS // len(self.live))  # bounds the (S, rows, width) activations
            logits = torch.cat([self.model(xb) for xb in x.split(chunk, dim=1)], dim=1)  # (S, N, classes)
            slices = [self.slice_of(k) for k in scores]
            losses = torch.stack([self.loss_fn(logits[s], y[s]) for s in slices])
            hits = (logits.argmax(dim=-1) == y).float().mean(dim=-1)
            for k, loss, acc in zip(scores, losses.tolist(), hits[slices].tolist()):
                scores[k] |= {f"{split}/loss": loss, f"{split}/acc": acc}
        return scores

    def stacked(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every slice's `split` as (S, N, F) inputs and (S, N) labels: a shared split expanded,
        not copied; members' own splits (of one size: a stack's data settings are shared) stacked."""
        if split not in self.stacked_splits:
            parts, k = [getattr(m.splits, split) for m in self.computed], len(self.live)
            if all(p[0] is parts[0][0] for p in parts):
                x, y = parts[0]
                self.stacked_splits[split] = x.expand(k, *x.shape), y.expand(k, *y.shape)
            else:
                self.stacked_splits[split] = torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts])
        return self.stacked_splits[split]

    def states(self, order: torch.Tensor | None) -> Callable[[int], dict]:
        # Views of member k's slices (the recorder copies them once: dltips.run.checkpoint.detached)
        # of the model's and optimizer's state_dicts, walked once for every member's checkpoint.
        model, optimizer = self.model.state_dict(), self.optimizer.state_dict()

        def state(k: int) -> dict:
            s = self.slice_of(k)
            return {
                "model": member_state(model, s),
                "optimizer": member_optimizer_state(self.optimizer, s, optimizer),
                "order": order[s] if order is not None else None,
            }

        return state

    def load_state(self, states: dict[int, dict], source: int) -> torch.Tensor | None:
        """As Networks.load_state, into a stack of all its members (before any has left)."""
        params = self.model.state_dict()
        for k, state in states.items():
            for name, value in state["model"].items():
                if params[name][k].shape != value.shape:
                    raise RuntimeError(
                        f"size mismatch for {name}: {tuple(value.shape)} saved, {tuple(params[name][k].shape)} now"
                    )
                params[name][k].copy_(value)
        # Members without a checkpoint (finished before writing one) take a running one's place.
        full = [states.get(k, states[source]) for k in range(len(self.members))]
        self.optimizer.load_state_dict(stacked_optimizer_state(self.optimizer, [s["optimizer"] for s in full], source))
        if states[source].get("order") is None:
            return None
        return torch.stack([states[source]["order"] if s.get("order") is None else s["order"] for s in full])

    @torch.no_grad()
    def drop_done(self) -> None:
        """Members that are done leave the stack: the slices of the members left are kept, in
        their order, in the same model and optimizer (the loop's references stay good). A
        member that left keeps its network as it ended, in tensors of its own."""
        keep = [s for s, k in enumerate(self.live) if not self.members[k].done]
        if not keep or len(keep) == len(self.live):  # none left to compute, or none to drop
            return
        for m in self.computed:
            if m.done:
                for p in m.view.parameters():
                    p.data = p.data.clone()
        index = torch.tensor(keep, device=self.device)
        keep_optimizer_members(self.optimizer, index, keep_members(self.model, index))
        self.live = [self.live[s] for s in keep]
        tie([m.view for m in self.computed], self.model)
        if self.x.dim() == 3:  # the members' own splits
            self.x, self.y = self.x[index], self.y[index]
        self.stacked_splits.clear()
