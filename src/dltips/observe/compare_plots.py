"""The figures of dltips-compare: a validation curve per run or per group (the group's runs thin,
their mean thick with the 95% interval of the mean as a band), and the gradient flow of the runs
at their first logged step (the lecture's vanishing-gradient figure).

Each function returns a bare matplotlib `Figure` (Agg, no pyplot state); the caller saves it.
The caller passes one `styles` for all its figures, so that a setting keeps its colour in each.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dltips.config.plan import short_keys
from dltips.observe.compare_groups import ALL, run_labels
from dltips.observe.compare_tables import groups
from dltips.observe.intervals import mean_ci
from dltips.observe.plots import CYCLE, colors

# Past len(CYCLE) lines the colours come round again, each round with the next line style.
LINESTYLES = ("-", "--", ":", "-.")
# Legend entries per column before the legend gets another column (small font, 4.5-inch figure).
LEGEND_ROWS = 16
WIDTH, HEIGHT = 6.4, 4.5  # inches, the axes' part of the figure; the legend widens it
# A group's runs drawn thin and pale under their mean: the spread without a legend entry each.
RUN_LINE = {"linewidth": 0.8, "alpha": 0.35}
MEAN_LINE = {"linewidth": 2.2}


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


def band(mean: np.ndarray, half: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """mean ± half-width, clipped to the metric's range: an accuracy band must not leave [0, 1]."""
    lo, hi = value_range(metric)
    return np.clip(mean - half, lo, hi), np.clip(mean + half, lo, hi)


def mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, half-width of its 95% interval) over runs. Runs may stop at different
    epochs (early stopping, divergence), so each epoch takes the runs that reached it: the
    column of mean_ci_curves over those runs; the half-width is 0 where only one did."""
    epochs = np.unique(np.concatenate([e for e, _ in curves]))
    at = [[v[e == x][-1] for e, v in curves if (e == x).any()] for x in epochs]
    mean, half = np.array([mean_ci(a) for a in at]).T
    return epochs, mean, half


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


def curves_figure(series: dict[str, list], metric: str, title: str, grouped: bool, style: dict | None = None) -> Figure:
    """The metric against the epoch. series: label -> [(epochs, values)] of its runs; grouped:
    per label its runs thin, their mean thick with its 95% interval as a band (clipped to the
    metric's range), else one line per run. style: label -> styles() entry (default: styles(series))."""
    fig = Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
    ax = fig.add_subplot()
    style = style or styles(list(series))
    for label, curves in series.items():
        if grouped and len(curves) > 1:
            for epochs, values in curves:
                ax.plot(epochs, values, **style[label], **RUN_LINE)
        epochs, mean, half = mean_curve(curves)
        ax.plot(
            epochs,
            mean,
            marker="o",
            markersize=3,
            label=f"{label} (n={len(curves)})" if grouped else label,
            **style[label],
            **(MEAN_LINE if grouped else {}),
        )
        if grouped and len(curves) > 1:
            ax.fill_between(epochs, *band(mean, half, metric), color=style[label]["color"], alpha=0.2, linewidth=0)
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


def gradient_flow_figure(
    series: dict[str, list[np.ndarray]], title: str, grouped: bool, style: dict | None = None
) -> Figure:
    """‖∂C/∂W^l‖ against the layer l on a log scale. series: label -> the runs' norms, (L,) each
    with NaN where a layer has none; grouped: per label its runs thin, their geometric mean
    thick, else one line per run. style: as for curves_figure."""
    fig = Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
    ax = fig.add_subplot()
    style = style or styles(list(series))
    for label, norms in series.items():
        if grouped and len(norms) > 1:
            for n in norms:
                ax.semilogy(np.arange(1, len(n) + 1), n, **style[label], **RUN_LINE)
        y = geometric_mean(norms)
        layers = np.arange(1, len(y) + 1)
        name = f"{label} (n={len(norms)})" if grouped else label
        ax.semilogy(layers, y, marker="o", markersize=4, label=name, **style[label], **(MEAN_LINE if grouped else {}))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="layer l (1 = next to the input)", ylabel="‖∂C/∂W^l‖ (log scale)", title=title)
    ax.grid(alpha=0.3, which="both")
    legend_outside(fig, ax)
    return fig


def draw(rows: list[dict], metric: str, keys: list[str] | None, out: Path) -> list[str]:
    """curves.png, and gradient_flow.png when some run logged per-layer gradient norms: per group
    (keys; its runs thin, their mean thick), else one line per run named by what differs between
    the runs. A group or run has the same colour in both. Returns the names of the figures written."""
    grouped = keys is not None
    if grouped:
        rows = [r for runs in groups(rows).values() for r in runs]
        names = [r["group"] for r in rows]
    else:
        names = run_labels([r["run"] for r in rows], [r["settings"] for r in rows])
    curves, norms = {}, {}
    for name, r in zip(names, rows):
        if len(r["curve"][0]):
            curves.setdefault(name, []).append(r["curve"])
        if r["gradients"] is not None:
            norms.setdefault(name, []).append(r["gradients"])
    style = styles(list(dict.fromkeys(names)))
    per = (", ".join(short_keys(keys).values()) or ALL) if grouped else ""  # short: the title has one line
    title = f"{metric}: mean over runs and its 95% interval, per {per}" if grouped else f"{metric} per run"
    curves_figure(curves, metric, title, grouped, style).savefig(out / "curves.png", dpi=120)
    flow = out / "gradient_flow.png"
    if not norms:
        flow.unlink(missing_ok=True)  # one from an earlier comparison would not belong to this summary
        return ["curves.png"]
    title = "Gradient flow at the first logged step, " + (f"geometric mean per {per}" if grouped else "per run")
    gradient_flow_figure(norms, title, grouped, style).savefig(flow, dpi=120)
    return ["curves.png", flow.name]
