"""The fully connected network every experiment trains."""

from __future__ import annotations

import math

import torch
from torch import nn

from dltips.checks import is_number, require, require_choice, require_int
from dltips.nn.activations import ACTIVATION_NAMES, create_activation
from dltips.nn.dropout import DROPOUT_MODES, Dropout
from dltips.nn.maxout import Maxout

INITS = ("default", "xavier", "kaiming")


class MLP(nn.Module):
    """input → [dropout] → depth × (linear → activation → [dropout]) → linear → logits.

    With `activation="maxout"` each hidden layer is a `Maxout(width, pieces)`: `width` units,
    each the max over `pieces` linear pieces (`zero_piece`: piece 0 held at 0, so that two pieces
    compute ReLU; see Maxout). `bias_init` sets every hidden bias to a constant
    (the lecture's remedy for dead ReLUs); None keeps the init scheme's bias.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        depth: int,
        width: int,
        activation: str,
        pieces: int = 2,
        zero_piece: bool = False,
        init: str = "default",
        bias_init: float | None = None,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        dropout_mode: str = "weight_scaling",
    ):
        super().__init__()
        require_int("model.depth", depth, 1)
        require_int("model.width", width, 1)
        require_choice("model.activation", activation, ACTIVATION_NAMES)
        require_int("model.pieces", pieces, 2)  # for every activation: a bad value is never ignored
        require(
            isinstance(zero_piece, bool), "model.zero_piece", zero_piece, "true or false"
        )  # maxout only, like pieces
        require_choice("model.init", init, INITS)
        require(
            bias_init is None or (is_number(bias_init) and math.isfinite(bias_init)),
            "model.bias_init",
            bias_init,
            "a finite number or null",
        )
        # Checked here, not only in Dropout: a p <= 0 builds no Dropout, so a negative p or a bad
        # mode would otherwise be silently ignored.
        for key, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            require(is_number(p) and 0.0 <= p < 1.0, f"model.{key}", p, "0 <= p < 1")
        require_choice("model.dropout_mode", dropout_mode, DROPOUT_MODES)
        self.activation = activation
        layers: list[nn.Module] = []
        if input_dropout > 0:
            layers.append(Dropout(input_dropout, dropout_mode))
        n = in_features
        for _ in range(depth):
            if activation == "maxout":
                layers.append(Maxout(n, width, pieces, zero_piece))
            else:
                layers += [nn.Linear(n, width), create_activation(activation, width)]
            if dropout > 0:
                layers.append(Dropout(dropout, dropout_mode))
            n = width
        layers.append(nn.Linear(n, out_features))
        self.net = nn.Sequential(*layers)
        initialize(self.linears(), init, bias_init)

    def linears(self) -> list[nn.Linear]:
        """Every linear map in order, layer 1 (next to the input) … L (the output layer)."""
        return [m for m in self.modules() if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.no_grad()
def initialize(linears: list[nn.Linear], init: str, bias_init: float | None) -> None:
    for layer in linears:
        if init == "xavier":
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        elif init == "kaiming":
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    if bias_init is not None:
        for layer in linears[:-1]:
            nn.init.constant_(layer.bias, bias_init)
