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


# Every run's gradient-flow figure on one range, so that figures of two runs compare by eye:
# sigmoid's six decades look steeper than maxout's one and a half. Wider when a run needs it.
FLOW_RANGE = (1e-8, 10.0)
GRAD_W = r"$\Vert\partial C/\partial W^l\Vert$"
DELTA = r"$\Vert\delta^l\Vert = \Vert\partial C/\partial b^l\Vert$"


def flow_range(norms: np.ndarray) -> tuple[float, float]:
    finite = norms[np.isfinite(norms) & (norms > 0)]
    if not finite.size:
        return FLOW_RANGE
    return min(FLOW_RANGE[0], float(finite.min()) / 2), max(FLOW_RANGE[1], float(finite.max()) * 2)


def gradient_flow_figure(steps: list[int], norms: np.ndarray, title: str) -> Figure:
    """Gradient flow as the lecture draws it, for one run. Left: each layer's ‖∂C/∂W^l‖ over
    training, one line per layer. Right: ‖∂C/∂W^l‖ and ‖δ^l‖ against the layer l = 1 … L at
    the last step. Both on one log scale (FLOW_RANGE), titled with the ratio of the first
    layer's ‖∂C/∂W‖ to the last's: how much of the gradient reaches the input. `norms`: (steps,
    2, L), rows ‖∂C/∂W‖ and ‖δ‖; NaN where a layer has none (no bias)."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    first, last = norms[-1, 0, 0], norms[-1, 0, -1]
    layers = norms.shape[2]
    ratio = (
        rf"$\Vert\partial C/\partial W^1\Vert\,/\,\Vert\partial C/\partial W^{{{layers}}}\Vert$ = {first / last:.1e}"
    )
    fig.suptitle(", ".join([f"gradient flow of {title}", *([ratio] if last > 0 else [])]))
    over, now = fig.subplots(1, 2, sharey=True)
    shades = colormaps["viridis"](np.linspace(0, 0.9, layers))  # dark: next to the input
    for l in range(layers):
        over.semilogy(steps, norms[:, 0, l], color=shades[l], label=f"layer {l + 1}")
    over.set(xlabel="step", ylabel="norm (log scale)", title=f"{GRAD_W} of each layer over training")
    over.set_ylim(*flow_range(norms))
    # Beside the axes: inside, a deep network's 11 entries hide the layers next to the input.
    over.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0), ncol=1 + (layers > 12))
    x = np.arange(1, layers + 1)
    now.semilogy(x, norms[-1, 0], marker="o", color="#1f77b4", label=f"{GRAD_W} (weights)")
    now.semilogy(x, norms[-1, 1], marker="s", linestyle="--", color="#ff7f0e", label=f"{DELTA} (error signal)")
    now.xaxis.set_major_locator(MaxNLocator(integer=True))
    now.set(xlabel="layer l (1 = next to the input)", title=f"per layer at step {steps[-1]}")
    for ax in (over, now):
        ax.grid(alpha=0.3, which="both")
    now.legend(fontsize="small", loc="lower right")
    return fig


def to_image(fig: Figure, dpi: int = 90) -> np.ndarray:
    """The figure as an (H, W, 3) uint8 array, for SummaryWriter.add_image(dataformats="HWC")."""
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
