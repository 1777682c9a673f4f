"""Split parameters so weight decay touches the weights only."""

from __future__ import annotations

from torch import nn

from dltips.checks import require_number


def param_groups(model: nn.Module, weight_decay: float, split: bool | None = None) -> list[dict]:
    """Two groups: weight matrices get `weight_decay`, everything else (biases, PReLU slopes) none
    (one group when there is no decay, unless `split`: networks trained together whose decays
    differ, some 0, need the same groups).

    The lecture's regularizer is (λ/2)‖w‖² over the weights; decaying biases or learned slopes
    only pulls them towards 0 for no benefit (He et al. put no decay on PReLU's α either).
    """
    require_number("regularizer.weight_decay", weight_decay)
    # By name and shape: a stacked ensemble (dltips.nn.stacked) holds biases as matrices too, and
    # a 1-d "weight" (torch's PReLU α, a norm's scale) is not a weight matrix.
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not (
        weight_decay != 0 if split is None else split
    ):  # one group: a second would only cost time in every optimizer step
        return [{"params": [p for _, p in params], "weight_decay": 0.0}]
    is_matrix = [name.endswith("weight") and p.dim() >= 2 for name, p in params]
    decay = [p for (_, p), matrix in zip(params, is_matrix) if matrix]
    no_decay = [p for (_, p), matrix in zip(params, is_matrix) if not matrix]
    return [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
