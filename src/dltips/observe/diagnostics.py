"""Gradient flow, as the lecture draws it: per-layer gradients, error signals, how far each
layer moved from its random start, saturated and dead units, and the optimizer's step sizes.

Layers are numbered like the lecture's l: 1 is next to the input, L is the output layer.
Everything here runs every `trainer.log_every_n_steps` steps, right after the optimizer step,
while the step's gradients are still in `.grad`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dltips.nn import MLP, Maxout
from dltips.nn.activations import Activation, PReLU
from dltips.observe.tags import ACTIVATIONS, DELTA, GRADIENT_FLOW, GRADIENTS, OPTIM, WEIGHTS, per_layer

SATURATING = {
    "sigmoid": lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z)) / 0.25,
    "tanh": lambda z: 1 - torch.tanh(z) ** 2,
}
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
    """~activations/saturated_layer_i for sigmoid and tanh; dead_layer_i (units never active on
    the batch) for ReLU-like units; idle_pieces_layer_i (pieces that never win) for maxout."""
    out = {}
    for i, z in enumerate(zs, start=1):
        if activation in SATURATING:
            out[per_layer(ACTIVATIONS, i, "saturated_layer")] = (
                (SATURATING[activation](z) < SATURATED_BELOW).float().mean()
            )
        elif activation in RELU_LIKE:
            out[per_layer(ACTIVATIONS, i, "dead_layer")] = (z <= 0).all(dim=0).float().mean()
        elif activation == "maxout":
            winners = nn.functional.one_hot(z.argmax(dim=-1), z.shape[-1]).any(dim=0)
            out[per_layer(ACTIVATIONS, i, "idle_pieces_layer")] = (~winners).float().mean()
    return out


class GradientFlow:
    """Remembers each layer's initial weights; `measure` returns the per-layer statistics and,
    given the step, keeps ‖∂C/∂W^l‖ and ‖δ^l‖ ((2, L) tensors on the device) for the figure."""

    def __init__(self, model: MLP):
        self.model = model
        self.linears = model.linears()
        self.initial = [layer.weight.detach().clone() for layer in self.linears]
        self.steps: list[int] = []
        self.norms: list[torch.Tensor] = []

    def history(self) -> tuple[list[int], torch.Tensor]:
        """The steps measured and their norms, (steps, 2, L), for a checkpoint or the figure."""
        return list(self.steps), torch.stack(self.norms) if self.norms else torch.empty(0, 2, len(self.linears))

    def load_history(self, steps: list[int], norms: torch.Tensor) -> None:
        self.steps, self.norms = list(steps), list(norms.to(self.initial[0].device))

    @torch.no_grad()
    def measure(self, x: torch.Tensor, step: int | None = None) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        norms = torch.full((2, len(self.linears)), math.nan, device=x.device)  # rows: ‖∂C/∂W^l‖, ‖δ^l‖
        for i, (layer, w0) in enumerate(zip(self.linears, self.initial), start=1):
            if layer.weight.grad is not None:
                out[per_layer(GRADIENTS, i)] = norms[0, i - 1] = layer.weight.grad.norm()
            if layer.bias is not None and layer.bias.grad is not None:
                # ∂C/∂b^l is the batch's error signal δ^l (summed, over the mean loss).
                out[per_layer(DELTA, i)] = norms[1, i - 1] = layer.bias.grad.norm()
            out[per_layer(WEIGHTS, i, "moved_layer")] = (layer.weight - w0).norm() / w0.norm()
        # log10 as tags of their own: sigmoid's first layers sit orders of magnitude below its
        # last ones, which a chart with a linear axis draws as a flat line at 0.
        out |= {
            tag.replace("/layer_", "/log10_layer_"): v.log10()
            for tag, v in out.items()
            if tag.startswith((GRADIENTS, DELTA))
        }
        if step is not None:
            self.steps.append(step)
            self.norms.append(norms)
        return out | unit_statistics(self.model.activation, pre_activations(self.model, x))


@torch.no_grad()
def step_sizes(optimizer: torch.optim.Optimizer, model: MLP) -> dict[str, torch.Tensor]:
    """~optim/step_size_layer_i: the mean effective step of each layer's weights, for optimizers
    that expose one (the lecture's Adagrad: η^t/σ^t; momentum: |v|)."""
    if not hasattr(optimizer, "effective_step"):
        return {}
    out = {}
    for i, layer in enumerate(model.linears(), start=1):
        step = optimizer.effective_step(layer.weight)
        if step is not None:
            out[per_layer(OPTIM, i, "step_size_layer")] = step.mean()
    return out


# What unit_statistics measures per activation: the tag's stem and the chart's title.
UNITS = {
    **dict.fromkeys(SATURATING, ("saturated_layer", "share of saturated units per layer")),
    **dict.fromkeys(RELU_LIKE, ("dead_layer", "share of dead units per layer")),
    "maxout": ("idle_pieces_layer", "share of maxout pieces that never win, per layer"),
}


def custom_scalars_layout(num_layers: int, activation: str, step_sizes: bool) -> dict:
    """One TensorBoard chart per quantity with every layer on it (the CUSTOM SCALARS tab), norms
    on a log10 scale; only the charts this run has data for."""
    charts = {
        "log10 ‖∂C/∂W‖ per layer": per_layer(GRADIENTS, r"\d+", "log10_layer"),
        "log10 ‖δ‖ = log10 ‖∂C/∂b‖ per layer": per_layer(DELTA, r"\d+", "log10_layer"),
        "‖W − W₀‖ / ‖W₀‖ per layer": per_layer(WEIGHTS, r"\d+", "moved_layer"),
    }
    if activation in UNITS:
        stem, title = UNITS[activation]
        charts[title] = per_layer(ACTIVATIONS, r"\d+", stem)
    if step_sizes:
        charts["effective step size per layer"] = per_layer(OPTIM, r"\d+", "step_size_layer")
    return {f"gradient flow ({num_layers} layers)": {title: ["Multiline", [regex]] for title, regex in charts.items()}}


# The gradient-flow figure costs ~0.15 s to draw: a run draws about this many over training.
FLOW_IMAGES = 10


def log_gradient_flow(writer, flow: GradientFlow, run: str, epoch: int, step: int, max_epochs: int) -> None:
    """The gradient-flow figure as an image (IMAGES tab, one per step on its slider): after the
    first epoch, every max_epochs/FLOW_IMAGES epochs and after the last."""
    every = max(1, math.ceil(max_epochs / FLOW_IMAGES))
    if not flow.steps or not (epoch == 0 or (epoch + 1) % every == 0 or epoch == max_epochs - 1):
        return
    from dltips.observe.plots import gradient_flow_figure, to_image  # matplotlib: only when drawing

    steps, norms = flow.history()
    fig = gradient_flow_figure(steps, norms.cpu().numpy(), f"{run} after epoch {epoch}")
    writer.add_image(GRADIENT_FLOW, to_image(fig), step, dataformats="HWC")
