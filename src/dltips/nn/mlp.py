"""The fully connected network every experiment trains."""
from __future__ import annotations

import math

import torch
from torch import nn

from dltips.nn.activations import ACTIVATION_NAMES, create_activation
from dltips.nn.dropout import DROPOUT_MODES, Dropout
from dltips.nn.maxout import Maxout

INITS = ("default", "xavier", "kaiming")


class MLP(nn.Module):
    """input → [dropout] → depth × (linear → activation → [dropout]) → linear → logits.

    With `activation="maxout"` each hidden layer is a `Maxout(width, pieces)`: `width` units,
    each the max over `pieces` linear pieces. `bias_init` sets every hidden bias to a constant
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
        init: str = "default",
        bias_init: float | None = None,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        dropout_mode: str = "weight_scaling",
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"Invalid model.depth: {depth}; allowed: an integer >= 1")
        if width < 1:
            raise ValueError(f"Invalid model.width: {width}; allowed: an integer >= 1")
        if activation not in ACTIVATION_NAMES:
            raise ValueError(f"Invalid model.activation: {activation!r}; allowed: {', '.join(ACTIVATION_NAMES)}")
        if init not in INITS:
            raise ValueError(f"Invalid model.init: {init!r}; allowed: {', '.join(INITS)}")
        # Checked here, not only in Dropout: a p <= 0 builds no Dropout, so a negative p or a bad
        # mode would otherwise be silently ignored.
        for key, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"Invalid model.{key}: {p}; allowed: 0 <= p < 1")
        if dropout_mode not in DROPOUT_MODES:
            raise ValueError(f"Invalid model.dropout_mode: {dropout_mode!r}; allowed: {', '.join(DROPOUT_MODES)}")
        self.activation = activation
        layers: list[nn.Module] = []
        if input_dropout > 0:
            layers.append(Dropout(input_dropout, dropout_mode))
        n = in_features
        for _ in range(depth):
            if activation == "maxout":
                layers.append(Maxout(n, width, pieces))
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
        if not math.isfinite(bias_init):
            raise ValueError(f"Invalid model.bias_init: {bias_init}; allowed: a finite number or null")
        for layer in linears[:-1]:
            nn.init.constant_(layer.bias, bias_init)
