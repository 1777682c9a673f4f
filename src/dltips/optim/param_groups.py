"""Split parameters so weight decay touches the weights only."""
from __future__ import annotations

import math

from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weight matrices get `weight_decay`, everything else (biases, PReLU slopes) none.

    The lecture's regularizer is (λ/2)‖w‖² over the weights; decaying biases or learned slopes
    only pulls them towards 0 for no benefit (He et al. put no decay on PReLU's α either).
    """
    if not isinstance(weight_decay, (int, float)) or not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"Invalid regularizer.weight_decay: {weight_decay!r}; allowed: a number >= 0")
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
