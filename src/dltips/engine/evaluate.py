"""Scoring a network on whole splits, in eval mode (dropout off), without gradients."""

from __future__ import annotations

import torch
from torch import nn

from dltips.data import Splits

EVAL_ROWS = 8192  # rows per forward pass: chunks bound the memory on big splits


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss and accuracy of the network in eval mode (dropout off) over a whole split."""
    model.eval()
    total, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    for xb, yb in zip(x.split(EVAL_ROWS), y.split(EVAL_ROWS)):
        logits = model(xb)
        total += loss_fn(logits, yb) * len(yb)
        correct += (logits.argmax(dim=1) == yb).sum()
    return {"loss": total.item() / len(y), "acc": correct.item() / len(y)}


def evaluate_splits(model: nn.Module, loss_fn: nn.Module, splits: Splits, names: tuple[str, ...]) -> dict[str, float]:
    """`train/loss`, `train/acc`, `val/loss`, … for the named splits."""
    out: dict[str, float] = {}
    for split in names:
        out |= {f"{split}/{key}": v for key, v in evaluate(model, loss_fn, *getattr(splits, split)).items()}
    return out
