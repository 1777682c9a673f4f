"""Gradient flow, as the lecture draws it: per-layer gradients, error signals, how far each
layer moved from its random start, saturated and dead units, and the optimizer's step sizes.

Layers are numbered like the lecture's l: 1 is next to the input, L is the output layer.
Everything here runs every `trainer.log_every_n_steps` steps, right after the optimizer step,
while the step's gradients are still in `.grad`.
"""
from __future__ import annotations

import torch
from torch import nn

from dltips.nn import MLP, Maxout
from dltips.nn.activations import Activation, PReLU

SATURATING = {"sigmoid": lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z)) / 0.25, "tanh": lambda z: 1 - torch.tanh(z) ** 2}
RELU_LIKE = ("relu", "leaky_relu", "prelu", "softplus")
SATURATED_BELOW = 0.1  # a unit is saturated where σ'(z) is under 10% of its peak value


def pre_activations(model: MLP, x: torch.Tensor) -> list[torch.Tensor]:
    """z of every hidden layer on `x` (maxout: all pieces, (batch, units, pieces)), dropout off."""
    zs, a = [], x
    for layer in model.net:
        if isinstance(layer, Maxout):
            z = layer.pre_activation(a)
            zs.append(z)
            a = z.amax(dim=-1)
        elif isinstance(layer, nn.Linear):
            a = layer(a)
            zs.append(a)
        elif isinstance(layer, (Activation, PReLU)):
            a = layer(a)
    return zs[:-1]  # the last linear map gives the logits, not a hidden layer


def unit_statistics(activation: str, zs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """activations/saturated_layer_i for sigmoid and tanh; dead_layer_i (units never active on
    the batch) for ReLU-like units; idle_pieces_layer_i (pieces that never win) for maxout."""
    out = {}
    for i, z in enumerate(zs, start=1):
        if activation in SATURATING:
            out[f"activations/saturated_layer_{i}"] = (SATURATING[activation](z) < SATURATED_BELOW).float().mean()
        elif activation in RELU_LIKE:
            out[f"activations/dead_layer_{i}"] = (z <= 0).all(dim=0).float().mean()
        elif activation == "maxout":
            winners = nn.functional.one_hot(z.argmax(dim=-1), z.shape[-1]).any(dim=0)
            out[f"activations/idle_pieces_layer_{i}"] = (~winners).float().mean()
    return out


class GradientFlow:
    """Remembers each layer's initial weights; `measure` returns the per-layer statistics."""

    def __init__(self, model: MLP):
        self.model = model
        self.linears = model.linears()
        self.initial = [layer.weight.detach().clone() for layer in self.linears]

    @torch.no_grad()
    def measure(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for i, (layer, w0) in enumerate(zip(self.linears, self.initial), start=1):
            if layer.weight.grad is not None:
                out[f"gradients/layer_{i}"] = layer.weight.grad.norm()
            if layer.bias is not None and layer.bias.grad is not None:
                # ∂C/∂b^l is the batch's error signal δ^l (summed, over the mean loss).
                out[f"delta/layer_{i}"] = layer.bias.grad.norm()
            out[f"weights/moved_layer_{i}"] = (layer.weight - w0).norm() / w0.norm()
        return out | unit_statistics(self.model.activation, pre_activations(self.model, x))


@torch.no_grad()
def step_sizes(optimizer: torch.optim.Optimizer, model: MLP) -> dict[str, torch.Tensor]:
    """optim/step_size_layer_i: the mean effective step of each layer's weights, for optimizers
    that expose one (the lecture's Adagrad: η^t/σ^t; momentum: |v|)."""
    if not hasattr(optimizer, "effective_step"):
        return {}
    out = {}
    for i, layer in enumerate(model.linears(), start=1):
        step = optimizer.effective_step(layer.weight)
        if step is not None:
            out[f"optim/step_size_layer_{i}"] = step.mean()
    return out


def custom_scalars_layout(num_layers: int) -> dict:
    """One TensorBoard chart per quantity with every layer on it (the CUSTOM SCALARS tab)."""
    charts = {
        "‖∂C/∂W‖ per layer": r"gradients/layer_\d+",
        "‖δ‖ = ‖∂C/∂b‖ per layer": r"delta/layer_\d+",
        "‖W − W₀‖ / ‖W₀‖ per layer": r"weights/moved_layer_\d+",
        "saturated / dead units per layer": r"activations/.*",
        "effective step size per layer": r"optim/step_size_layer_\d+",
    }
    return {f"gradient flow ({num_layers} layers)": {title: ["Multiline", [regex]] for title, regex in charts.items()}}
