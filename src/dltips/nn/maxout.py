"""Maxout (Goodfellow et al. 2013): each unit is the max over `pieces` linear functions."""

from __future__ import annotations

import torch
from torch import nn

from dltips.checks import require, require_int


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

    `zero_piece=True` holds piece 0 of every unit at 0 (weights and bias zero, never trained) and
    learns the other pieces − 1: with two pieces, y = max(0, w·x + b) is ReLU exactly, the
    lecture's special case. Piece 0 comes first so that a tie at z = 0 picks it, as ReLU's
    gradient at 0 is 0. With two pieces `linear` then has the shape, and from the same seed the
    initial values, of the ReLU network's linear map.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int, zero_piece: bool = False):
        super().__init__()
        require_int("model.pieces", pieces, 2)  # one piece would be a plain linear unit
        require_int("in_features", in_features, 1)
        require_int("out_features", out_features, 1)
        require(isinstance(zero_piece, bool), "model.zero_piece", zero_piece, "true or false")
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.zero_piece = zero_piece
        self.linear = nn.Linear(in_features, out_features * (pieces - zero_piece))

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The pieces' values, shaped (batch, out_features, pieces)."""
        z = self.linear(x).unflatten(-1, (self.out_features, self.pieces - self.zero_piece))
        return torch.cat([z.new_zeros(*z.shape[:-1], 1), z], dim=-1) if self.zero_piece else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_piece(self.pre_activation(x))

    def extra_repr(self) -> str:
        zero = ", zero_piece=True" if self.zero_piece else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}{zero}"
