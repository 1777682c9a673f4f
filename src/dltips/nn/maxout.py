"""Maxout (Goodfellow et al. 2013): each unit is the max over `pieces` linear functions."""
from __future__ import annotations

import torch
from torch import nn

from dltips.checks import require_int


def max_piece(z: torch.Tensor) -> torch.Tensor:
    """The max over the last dimension, whose gradient goes to one piece only: the first maximal
    one, as torch.argmax picks it. z: (..., pieces) -> (...).

    torch.max(dim) returns the first maximal index and routes the gradient through it alone;
    z.amax, the same values, splits the gradient evenly between tied pieces, so that two tied
    pieces would both train. One reduction kernel, no gather: as fast as amax.
    """
    return z.max(dim=-1).values


class Maxout(nn.Module):
    """y_j = max_k (W x + b)_{j·pieces + k}, for k = 0 … pieces − 1.

    One `linear` holds all pieces side by side, so the layer is a single matmul followed by a
    max over groups of `pieces` consecutive outputs. The max routes the gradient only to the
    winning piece of each unit: training moves a thin linear network per example.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        require_int("model.pieces", pieces, 2)  # one piece would be a plain linear unit
        require_int("in_features", in_features, 1)
        require_int("out_features", out_features, 1)
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The pieces' values, shaped (batch, out_features, pieces)."""
        return self.linear(x).unflatten(-1, (self.out_features, self.pieces))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_piece(self.pre_activation(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"
