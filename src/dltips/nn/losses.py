"""The lecture's two costs, both taking raw network outputs (logits) and class indices."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dltips.checks import require_choice

MSE_OUTPUTS = ("softmax", "sigmoid", "identity")
# Scoring (no gradient) from this many rows on, a CPU batch's cross-entropy is computed with the
# classes as dim 1 of (1, C, N): torch's CPU log-softmax over a short last dimension (10 classes)
# goes row by row, 6–8× slower than over dim 1, where it runs along the rows (1,078 rows: 162 →
# 25 µs). Not while training: for a batch of 32 its backward costs more than it saves (a digits
# run took 20% longer), and its gradients round differently in the last bit, so a network
# trained stacked (one loss over K batches) would part from itself trained alone.
TRANSPOSED_FROM_ROWS = 64


class CrossEntropyLoss(nn.Module):
    """Softmax output + cross-entropy C = −log y_r, averaged over the batch.

    Its gradient with respect to the logits is softmax(z) − onehot(r): the lecture's δ^L.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        scoring = not (torch.is_grad_enabled() and logits.requires_grad)
        if scoring and logits.dim() == 2 and logits.shape[0] >= TRANSPOSED_FROM_ROWS and logits.device.type == "cpu":
            return F.cross_entropy(logits.T.unsqueeze(0), target.unsqueeze(0))  # the same mean
        return F.cross_entropy(logits, target)


class MSELoss(nn.Module):
    """Quadratic cost C = ½‖y − ŷ‖² against one-hot targets, averaged over the batch.

    `output` is applied to the logits first: with softmax or sigmoid outputs, a saturated
    wrong answer has a tiny gradient — the reason the lecture prefers cross-entropy.
    """

    def __init__(self, output: str):
        super().__init__()
        require_choice("loss.output", output, MSE_OUTPUTS)
        self.output = output

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.output == "softmax":
            y = logits.softmax(dim=-1)
        elif self.output == "sigmoid":
            y = logits.sigmoid()
        else:
            y = logits
        onehot = F.one_hot(target, logits.shape[-1]).to(y.dtype)
        return 0.5 * (y - onehot).pow(2).sum(dim=-1).mean()

    def extra_repr(self) -> str:
        return f"output={self.output}"
