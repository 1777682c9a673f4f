"""What every figure shares: one colour per activation, optimizer and remedy, and the lecture's
gradient-flow figure (per-layer norms over training and against the layer index, log scale).

Figures are bare matplotlib `Figure`s rendered with Agg: no pyplot state, no display needed.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# One colour per thing, in every figure and every run: sigmoid is always the same red, whether
# it is compared with ReLU in a sweep summary or in the lecture report.
COLORS = {
    # activations
    "sigmoid": "#d62728",
    "tanh": "#ff7f0e",
    "relu": "#1f77b4",
    "softplus": "#17becf",
    "leaky_relu": "#2ca02c",
    "prelu": "#bcbd22",
    "maxout": "#9467bd",
    # optimizers; the lecture's own and torch's share a colour (ours is drawn dashed on top)
    "sgd": "#7f7f7f",
    "sgd_inverse_sqrt": "#bcbd22",
    "adagrad": "#e377c2",
    "torch_adagrad": "#e377c2",
    "momentum": "#8c564b",
    "torch_momentum": "#8c564b",
    "adam": "#1f77b4",
    "rmsprop": "#2ca02c",
    # remedies against overfitting
    "none": "#7f7f7f",
    "weight_decay": "#1f77b4",
    "early_stopping": "#ff7f0e",
    "augmentation": "#2ca02c",
    "dropout": "#9467bd",
    # cost functions and input normalization
    "cross_entropy": "#1f77b4",
    "mse": "#d62728",
    "standard": "#1f77b4",
    "minmax": "#2ca02c",
}
# Anything else (a run name, a learning rate) takes the next colour of a 20-colour cycle, so
# that up to 20 lines in one plot never share one.
CYCLE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]


def known_name(label: str) -> str | None:
    """The known thing a label names: itself ("relu"), or the one value of a run name that is
    one ("activation=relu,depth=6" -> relu)."""
    if label in COLORS:
        return label
    values = [part.partition("=")[2] for part in label.split(",")]
    named = [v for v in values if v in COLORS]
    return named[0] if len(named) == 1 else None


def colors(labels: list[str]) -> dict[str, str]:
    """A colour per label: the fixed one where the label names a known thing that no other
    label names (relu's runs at two depths must not share one), else the next from CYCLE."""
    names = {label: known_name(label) for label in labels}
    counts = {n: list(names.values()).count(n) for n in names.values()}
    fixed = {label: COLORS[n] for label, n in names.items() if n is not None and counts[n] == 1}
    free = iter(c for c in CYCLE if c not in fixed.values())
    return {label: fixed.get(label) or next(free, "#000000") for label in labels}


def gradient_flow_figure(steps: list[int], norms: np.ndarray, title: str) -> Figure:
    """Gradient flow as the lecture draws it, for one run. Left: each layer's ‖∂C/∂W^l‖ over
    training, one line per layer. Right: ‖∂C/∂W^l‖ and ‖δ^l‖ against the layer l = 1 … L at
    the last step. Both on a log scale. `norms`: (steps, 2, L), rows ‖∂C/∂W‖ and ‖δ‖; NaN
    where a layer has none (no bias)."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    fig.suptitle(f"gradient flow, {title}")
    over, now = fig.subplots(1, 2)
    layers = norms.shape[2]
    shades = colormaps["viridis"](np.linspace(0, 0.9, layers))  # dark: next to the input
    for l in range(layers):
        over.semilogy(steps, norms[:, 0, l], color=shades[l], label=f"layer {l + 1}")
    over.set(xlabel="step", ylabel="‖∂C/∂W^l‖ (log scale)", title="each layer over training")
    over.legend(fontsize="x-small", ncol=2 if layers > 6 else 1, loc="best")
    x = np.arange(1, layers + 1)
    now.semilogy(x, norms[-1, 0], marker="o", color="#1f77b4", label="‖∂C/∂W^l‖ (weights)")
    now.semilogy(x, norms[-1, 1], marker="s", linestyle="--", color="#ff7f0e", label="‖δ^l‖ = ‖∂C/∂b^l‖ (error signal)")
    now.xaxis.set_major_locator(MaxNLocator(integer=True))
    now.set(xlabel="layer l (1 = next to the input)", ylabel="norm (log scale)", title=f"per layer at step {steps[-1]}")
    for ax in (over, now):
        ax.grid(alpha=0.3, which="both")
    now.legend(fontsize="small")
    return fig


def to_image(fig: Figure, dpi: int = 90) -> np.ndarray:
    """The figure as an (H, W, 3) uint8 array, for SummaryWriter.add_image(dataformats="HWC")."""
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
