"""The report's figures about units: dead ReLUs and what maxout units learn (conventions: figures.py)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from dltips.observe.plots import COLORS
from lecture.figures import finish

HATCH = {"lr 0.001": "..", "bias 0.5": "//"}  # a ReLU variant's setting, drawn over relu's colour


def activation_of(variant: str) -> str:
    """'relu, bias 0.5' -> 'relu': the name that gives a variant its colour."""
    return variant.split(",")[0]


def dead_units_figure(layers: dict[str, np.ndarray], acc: dict[str, list[float]], remedies: tuple[str, ...]) -> Figure:
    """Left: share of units off on every training example, per hidden layer (one bar each), per
    variant; right: test accuracy per variant. layers[variant]: (seeds, hidden layers)."""
    fig = Figure(figsize=(12.5, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.5, 1])
    names = list(layers)
    n = next(iter(layers.values())).shape[1]
    x, w = np.arange(len(names)), 0.8 / n
    for i, v in enumerate(names):
        c, hatch = COLORS[activation_of(v)], HATCH.get(v.partition(", ")[2])
        for l in range(n):
            left.bar(
                x[i] + (l - (n - 1) / 2) * w,
                layers[v][:, l].mean(),
                w,
                color=c,
                alpha=0.35 + 0.65 * (l + 1) / n,
                hatch=hatch,
                edgecolor="white",
                gid=activation_of(v),
            )
        bars = right.bar(
            x[i],
            np.mean(acc[v]),
            0.7,
            yerr=np.std(acc[v], ddof=1) if len(acc[v]) > 1 else 0,
            capsize=3,
            color=c,
            hatch=hatch,
            edgecolor="white",
            gid=activation_of(v),
        )
        right.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    labels = [v.replace(", ", "\n") for v in names]
    left.set_xticks(x, labels, fontsize=8)
    right.set_xticks(x, labels, fontsize=8)
    seeds = len(next(iter(acc.values())))
    finish(
        left,
        "Units off on every training example (z ≤ 0)",
        "variant (Adam at lr 0.03 unless marked)",
        "share of the layer's units",
        legend=False,
        ylim=(0, 1),
    )
    left.legend(
        handles=[Patch(color="grey", alpha=0.35 + 0.65 * (l + 1) / n, label=f"hidden layer {l + 1}") for l in range(n)],
        fontsize=8,
        loc="upper left",
    )
    if "maxout" in names:
        left.annotate(
            "maxout: none by construction",
            (x[names.index("maxout")], 0.02),
            ha="center",
            fontsize=7,
            rotation=90,
            va="bottom",
        )
    finish(
        right, "Test accuracy", "variant (Adam at lr 0.03 unless marked)", "test accuracy", legend=False, ylim=(0, 1.08)
    )
    fig.suptitle(
        f"Adam at lr 0.03 (30× its usual rate) kills ReLUs; the remedies at the same rate "
        f"(mean, ± std over {seeds} seeds)"
    )
    return fig


def maxout_functions_figure(curves: list[dict]) -> Figure:
    """A few learned maxout units along a line between two training inputs: each piece's value
    (thin, dashed) and the unit's output, their max (thick). curves[i]: t, pieces (k, len(t)), title."""
    fig = Figure(figsize=(13.5, 3.8), layout="constrained")
    for ax, c in zip(fig.subplots(1, len(curves)), curves):
        for k, piece in enumerate(c["pieces"]):
            ax.plot(c["t"], piece, ls="--", lw=1, color=f"C{k}", label=f"piece {k + 1}")
        ax.plot(
            c["t"],
            c["pieces"].max(axis=0),
            lw=2.6,
            color=COLORS["maxout"],
            alpha=0.8,
            label="max: the unit",
            gid="maxout",
        )
        finish(ax, c["title"], "t, input x = (1 − t)·x_a + t·x_b", "piece value, unit output", legend=False)
    fig.axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(
        "Learned maxout units (hidden layer 1, 4 pieces each), convex and piecewise linear: drawn along the "
        "line from a training '0' (t = 0) to a training '1' (t = 1)"
    )
    return fig


def piece_wins_figure(wins: list[np.ndarray], win_share: np.ndarray, least: float) -> Figure:
    """Left: per layer, the sorted share of training examples each piece wins (seed 0), with the
    share `least` a trained piece must reach; right: the share of pieces that reach it, per
    layer, over seeds."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for l, w in enumerate(wins):
        left.plot(
            np.arange(1, len(w) + 1) / len(w), np.sort(w)[::-1], lw=2, color=f"C{l}", label=f"hidden layer {l + 1}"
        )
    left.axhline(least, color="black", ls=":", lw=1, label=f"{least:.0%}: the least a trained piece wins")
    finish(
        left,
        "How many examples each piece wins (seed 0)",
        "pieces, sorted (share of the layer's pieces)",
        "share of training examples it wins on (log)",
        yscale="log",
    )
    layers = np.arange(1, win_share.shape[1] + 1)
    right.bar(
        layers,
        win_share.mean(axis=0),
        0.5,
        yerr=win_share.std(axis=0, ddof=1) if len(win_share) > 1 else 0,
        capsize=3,
        color=COLORS["maxout"],
        gid="maxout",
    )
    right.set_xticks(layers, [f"hidden layer {l}" for l in layers])
    finish(
        right,
        f"Pieces that win on ≥ {least:.0%} of the training examples\n(mean ± std over {len(win_share)} seeds)",
        "",
        "share of the layer's pieces",
        legend=False,
        ylim=(0, 1.05),
    )
    fig.suptitle("Maxout: each example trains only its winning pieces, a thin linear network of its own")
    return fig
