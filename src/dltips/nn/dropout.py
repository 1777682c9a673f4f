"""Dropout with both test-time conventions.

`weight_scaling` is the lecture's: during training each unit is dropped with probability p
and the survivors pass unchanged; at test time nothing is dropped and the unit's output is
multiplied by (1 − p) — the same as multiplying its outgoing weights by (1 − p).
`inverted` is torch's: survivors are divided by (1 − p) during training and test time is the
identity. Both give the same expected activation, so either can be converted to the other.
"""

from __future__ import annotations

import torch
from torch import nn

from dltips.checks import is_number, require, require_choice

DROPOUT_MODES = ("weight_scaling", "inverted")


class Dropout(nn.Module):
    def __init__(self, p: float, mode: str = "weight_scaling"):
        super().__init__()
        require(is_number(p) and 0.0 <= p < 1.0, "dropout probability", p, "0 <= p < 1")
        require_choice("dropout mode", mode, DROPOUT_MODES)
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0:
            return x
        keep = 1.0 - self.p
        if self.training:
            # A fresh mask on every call: every mini-batch trains a different thinned network.
            mask = self.sample_mask(x, keep)
            return x * mask if self.mode == "weight_scaling" else x * mask / keep
        return x * keep if self.mode == "weight_scaling" else x

    def sample_mask(self, x: torch.Tensor, keep: float) -> torch.Tensor:
        return torch.empty_like(x).bernoulli_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
