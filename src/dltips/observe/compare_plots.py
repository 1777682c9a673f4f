"""The figures of dltips-compare: a validation curve per run or per group (mean ± std band), and
the gradient flow of the runs at their first logged step (the lecture's vanishing-gradient figure).

Each function returns a bare matplotlib `Figure` (Agg, no pyplot state); the caller saves it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dltips.observe.plots import CYCLE, colors

# Sample standard deviation over the runs of a group (seeds are a sample of possible runs).
DDOF = 1
# Past len(CYCLE) lines the colours come round again, each round with the next line style.
LINESTYLES = ("-", "--", ":", "-.")
# Legend entries per column before the legend gets another column (small font, 4.5-inch figure).
LEGEND_ROWS = 16
WIDTH, HEIGHT = 6.4, 4.5  # inches, the axes' part of the figure; the legend widens it


def styles(labels: list[str]) -> dict[str, dict[str, str]]:
    """Colour and line style per label: plots.colors (fixed colours for known names, else no
    repeats) for each block of len(CYCLE) labels, each further block drawn in the next line style."""
    out = {}
    for k in range(0, len(labels), len(CYCLE)):
        linestyle = LINESTYLES[k // len(CYCLE) % len(LINESTYLES)]
        out |= {label: {"color": c, "linestyle": linestyle} for label, c in colors(labels[k : k + len(CYCLE)]).items()}
    return out


def value_range(metric: str) -> tuple[float, float]:
    """Where the metric can lie: accuracies in [0, 1], losses in [0, ∞), anything else unbounded."""
    name = metric.rsplit("/", 1)[-1]
    if "acc" in name:
        return 0.0, 1.0
    if "loss" in name or "nll" in name:
        return 0.0, math.inf
    return -math.inf, math.inf


def band(mean: np.ndarray, std: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """mean ± std, clipped to the metric's range: an accuracy band must not leave [0, 1]."""
    lo, hi = value_range(metric)
    return np.clip(mean - std, lo, hi), np.clip(mean + std, lo, hi)


def mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, std) over runs; runs may stop at different epochs (early stopping,
    divergence): each epoch averages the runs that reached it, std is 0 where only one did."""
    epochs = np.unique(np.concatenate([e for e, _ in curves]))
    at = [[v[e == x][-1] for e, v in curves if (e == x).any()] for x in epochs]
    mean = np.array([np.mean(a) for a in at])
    std = np.array([np.std(a, ddof=DDOF) if len(a) > DDOF else 0.0 for a in at])
    return epochs, mean, std


def legend_outside(fig: Figure, ax) -> None:
    """The legend right of the axes, in columns of LEGEND_ROWS, the figure widened by its width
    so that the axes keep theirs: with 15 runs a legend inside covers the curves."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize="small",
        ncols=math.ceil(len(handles) / LEGEND_ROWS),
    )
    fig.draw_without_rendering()
    width = legend.get_window_extent().width / fig.dpi
    fig.set_size_inches(WIDTH + width + 0.2, HEIGHT)


def curves_figure(series: dict[str, list], metric: str, title: str, grouped: bool) -> Figure:
    """The metric against the epoch. series: label -> [(epochs, values)] of its runs; grouped:
    one line per label with a ± std band (clipped to the metric's range), else one line per run."""
    fig = Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
    ax = fig.add_subplot()
    style = styles(list(series))
    for label, curves in series.items():
        epochs, mean, std = mean_curve(curves)
        ax.plot(
            epochs,
            mean,
            marker="o",
            markersize=3,
            label=f"{label} (n={len(curves)})" if grouped else label,
            **style[label],
        )
        if grouped and len(curves) > 1:
            ax.fill_between(epochs, *band(mean, std, metric), color=style[label]["color"], alpha=0.2, linewidth=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel=metric, title=title)
    if value_range(metric) == (0.0, 1.0):  # the whole range: no gap between runs blown up
        ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    legend_outside(fig, ax)
    return fig


def geometric_mean(norms: list[np.ndarray]) -> np.ndarray:
    """Per layer over runs of different depths (NaN-padded): the mean of the logs, which is what
    a log axis shows, so one run with a large gradient does not stand in for the group."""
    table = np.full((len(norms), max(len(n) for n in norms)), np.nan)
    for i, n in enumerate(norms):
        table[i, : len(n)] = n
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a layer no run has: NaN, as it should be
        return np.exp(np.nanmean(np.log(table), axis=0))


def gradient_flow_figure(series: dict[str, list[np.ndarray]], title: str, grouped: bool) -> Figure:
    """‖∂C/∂W^l‖ against the layer l on a log scale. series: label -> the runs' norms, (L,) each
    with NaN where a layer has none; grouped: one line per label (geometric mean), else per run."""
    fig = Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
    ax = fig.add_subplot()
    style = styles(list(series))
    for label, norms in series.items():
        y = geometric_mean(norms)
        layers = np.arange(1, len(y) + 1)
        ax.semilogy(
            layers, y, marker="o", markersize=4, label=f"{label} (n={len(norms)})" if grouped else label, **style[label]
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="layer l (1 = next to the input)", ylabel="‖∂C/∂W^l‖ (log scale)", title=title)
    ax.grid(alpha=0.3, which="both")
    legend_outside(fig, ax)
    return fig
