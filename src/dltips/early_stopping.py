"""Early stopping: stop where the validation metric stopped improving, keep those weights."""

from __future__ import annotations

import math

import torch
from torch import nn

from dltips.checks import is_int, require, require_choice, require_number

MONITORS = {"val/loss": "min", "val/acc": "max"}


class EarlyStopping:
    """Tracks the best value of `monitor` and the weights that reached it.

    `patience=None` never stops but still remembers the best epoch. `min_delta` is the smallest
    change that counts as an improvement.
    """

    def __init__(self, patience: int | None, monitor: str, min_delta: float):
        key = "regularizer.early_stopping"
        ok = patience is None or (is_int(patience) and patience >= 1)
        require(ok, f"{key}.patience", patience, "null or an integer >= 1")
        require_choice(f"{key}.monitor", monitor, MONITORS)
        require_number(f"{key}.min_delta", min_delta)
        self.patience, self.monitor, self.min_delta = patience, monitor, float(min_delta)
        self.sign = 1.0 if MONITORS[monitor] == "min" else -1.0
        self.best = math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_metrics: dict[str, float] = {}  # the epoch's val/acc, val/loss, … at best_epoch

    def update(self, epoch: int, metrics: dict[str, float], model: nn.Module | None) -> bool:
        """Record this epoch's metrics; True when the monitored value improved. The weights are
        kept only when they will be restored (patience set); `model` may be None otherwise."""
        value = self.sign * metrics[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_metrics = dict(metrics)
            if self.patience is not None:
                # Cloned, not deep-copied: a stacked member's tensors are views, and deepcopy
                # would copy every member's storage with each.
                self.best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    @property
    def best_value(self) -> float:
        return self.sign * self.best

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
            "best_metrics": self.best_metrics,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
        self.best_state = state["best_state"]
        self.best_metrics = state.get("best_metrics", {})  # checkpoints written before it was kept have none
