"""Activation functions by name: a function for the maths, a thin module for the model.

The registry maps the names users write in configs (`model.activation=relu`) to a module
factory. Maxout is not here: it owns its linear pieces, so the MLP builds it differently.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from dltips.checks import require

LEAKY_SLOPE = 0.01  # Maas et al. 2013, as in the lecture
PRELU_INIT = 0.25  # He et al. 2015


def sigmoid(z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(z)


def tanh(z: torch.Tensor) -> torch.Tensor:
    return torch.tanh(z)


def relu(z: torch.Tensor) -> torch.Tensor:
    return torch.relu(z)


def softplus(z: torch.Tensor) -> torch.Tensor:
    return nn.functional.softplus(z)


def leaky_relu(z: torch.Tensor, slope: float = LEAKY_SLOPE) -> torch.Tensor:
    return nn.functional.leaky_relu(z, slope)


class Activation(nn.Module):
    """Wraps a parameter-free activation function so it shows up in the module tree."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)

    def extra_repr(self) -> str:
        return self.fn.__name__


class PReLU(nn.Module):
    """Parametric ReLU: a = z for z > 0, a = α·z otherwise, with one learned α per unit."""

    def __init__(self, num_features: int, init: float = PRELU_INIT):
        super().__init__()
        self.slope = nn.Parameter(torch.full((num_features,), float(init)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.where(z > 0, z, self.slope * z)


# name -> factory(num_features) -> module
ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {
    "sigmoid": lambda n: Activation(sigmoid),
    "tanh": lambda n: Activation(tanh),
    "relu": lambda n: Activation(relu),
    "softplus": lambda n: Activation(softplus),
    "leaky_relu": lambda n: Activation(leaky_relu),
    "prelu": lambda n: PReLU(n),
}
ACTIVATION_NAMES = (*ACTIVATIONS, "maxout")


def create_activation(name: str, num_features: int) -> nn.Module:
    require(isinstance(name, str) and name in ACTIVATIONS, "activation", name, ", ".join(ACTIVATION_NAMES))
    return ACTIVATIONS[name](num_features)
