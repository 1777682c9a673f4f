"""The report's figures: pure functions from measured numbers to a matplotlib `Figure`.

What every figure keeps to: one colour per name (dltips.observe.plots.COLORS), the same in every figure;
a title on every panel and a legend on every panel that shows more than one thing; accuracy
axes from 0 to 1, so that a gap of 0.01 looks like one, except where the claim is about gaps of a
few thousandths: there the axis is zoomed to the data (`zoom`) and its label says so. Each line,
band and bar carries its name as `gid`, which is what the tests read the colours back by.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from dltips.observe.plots import COLORS, colors
from lecture.lab import Run, series

ACCURACY = (0.0, 1.0)
REF = "torch_"  # a variant `x` and `torch_x` compute the same thing two ways


def finish(ax: Axes, title: str, xlabel: str, ylabel: str, legend: bool = True, **kwargs) -> None:
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, **kwargs)
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    if legend:
        ax.legend(fontsize=8)


def zoom(ax: Axes, margin: float = 0.15, least: float = 0.002) -> None:
    """y-limits around everything drawn on `ax` (lines, reference lines, interval bands), with `margin`
    of its range on each side (at least `least`), inside 0–1: an accuracy axis zoomed to the data."""
    low, high = ax.dataLim.intervaly
    pad = max(margin * (high - low), least)
    ax.set_ylim(max(low - pad, 0.0), min(high + pad, 1.0))


def largest_gap(ours: list[Run], ref: list[Run], tag: str) -> float:
    """max |ours − ref| of `tag` over seeds and epochs: how far apart two curves drawn as one are."""
    return max(
        max(abs(a - b) for (_, a), (_, b) in zip(x.scalars[tag], y.scalars[tag], strict=True))
        for x, y in zip(ours, ref, strict=True)
    )


def curves_figure(
    variants: dict[str, list[Run]],
    tag: str,
    title: str,
    ylabel: str,
    labels: dict[str, str] | None = None,
    log: bool = False,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Mean ± std over seeds of a per-epoch curve, one colour per variant name. Where both `x` and
    `torch_x` are present they coincide: torch's is drawn wide and solid, ours (`x`, labelled by
    its name) dashed on top in the same colour, the label giving the largest difference."""
    labels, palette = labels or {}, colors(list(variants))
    fig = Figure(figsize=(7.2, 4.4), layout="constrained")
    ax = fig.subplots()
    for name, runs in variants.items():
        epoch, mean, std = series(runs, tag)
        c, label = palette[name], labels.get(name, name)
        if REF + name in variants:
            gap = largest_gap(runs, variants[REF + name], tag)
            label = f"{name} (ours, dashed; max |Δ| = {gap:.1g} vs torch)"
            ax.plot(epoch, mean, color=c, ls="--", lw=1.6, zorder=3, label=label, gid=name)
            continue
        wide = name.startswith(REF) and name.removeprefix(REF) in variants
        ax.plot(epoch, mean, color=c, lw=5 if wide else 1.6, alpha=0.45 if wide else 1.0, label=label, gid=name)
        ax.fill_between(epoch, mean - std, mean + std, color=c, alpha=0.15, gid=name)
    seeds = len(next(iter(variants.values())))
    finish(
        ax,
        f"{title}\n(mean ± std over {seeds} seed{'s' * (seeds > 1)})",
        "epoch",
        ylabel,
        yscale="log" if log else "linear",
        ylim=ylim,
    )
    return fig


def vanishing_figure(grad: dict[str, np.ndarray], moved: dict[str, np.ndarray]) -> Figure:
    """Per layer l = 1 … L: ‖∂C/∂W^l‖ at the start (left) and how far W^l moved by the end (right)."""
    fig = Figure(figsize=(10.5, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for a in grad:
        layers = np.arange(1, len(grad[a]) + 1)
        left.plot(layers, grad[a], marker="o", color=COLORS[a], label=a, gid=a)
        right.plot(layers, moved[a], marker="o", color=COLORS[a], label=a, gid=a)
    finish(
        left,
        "Gradient per layer near the random start",
        "layer l (1 = next to the input)",
        "‖∂C/∂W‖ of layer l at the first logged step (log)",
        yscale="log",
    )
    finish(
        right,
        "How far each layer's weights moved in training",
        "layer l (1 = next to the input)",
        "‖W − W₀‖ / ‖W₀‖ of layer l at the end (log)",
        yscale="log",
    )
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    n = len(next(iter(grad.values())))
    fig.suptitle(f"Vanishing gradient: {n} weight layers ({n - 1} hidden), mean over seeds")
    return fig


def grouped_bars(ax: Axes, groups: list[str], values: dict[str, list[list[float]]], **bar) -> None:
    """One bar per name in each group, mean with a ±std whisker; `values[name][group]`: the seeds."""
    x, width = np.arange(len(groups)), 0.84 / len(values)
    for i, (name, per_group) in enumerate(values.items()):
        mean = [np.mean(v) for v in per_group]
        std = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in per_group]
        offset = (i - (len(values) - 1) / 2) * width
        ax.bar(x + offset, mean, width, yerr=std, capsize=2, color=COLORS[name], label=name, gid=name, **bar)
    ax.set_xticks(x, groups)


def activations_figure(
    acc: dict[tuple[str, int], list[float]], acts: tuple[str, ...], depths: tuple[int, ...]
) -> Figure:
    """Test accuracy per activation and depth, as grouped bars on the full 0–1 scale."""
    fig = Figure(figsize=(8.4, 4.4), layout="constrained")
    ax = fig.subplots()
    grouped_bars(ax, [f"{d} hidden layers" for d in depths], {a: [acc[(a, d)] for d in depths] for a in acts})
    seeds = len(acc[(acts[0], depths[0])])
    finish(
        ax,
        f"Test accuracy by depth and activation (mean ± std over {seeds} seed{'s' * (seeds > 1)})",
        "",
        "test accuracy",
        legend=False,
        ylim=ACCURACY,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def overfitting_figure(
    train: dict[str, list[float]], test: dict[str, list[float]], title: str = "Remedies against overfitting"
) -> Figure:
    """Train (light, hatched) and test accuracy per remedy, on the full 0–1 scale, test values written on.
    A key may name its data after the remedy ("none (mnist5k)"): the remedy's name picks the colour."""
    fig = Figure(figsize=(9.4, 4.4), layout="constrained")
    ax = fig.subplots()
    x, w = np.arange(len(test)), 0.4
    for i, label in enumerate(test):
        m = label.split(" ")[0]
        ax.bar(
            x[i] - w / 2, np.mean(train[label]), w, color=COLORS[m], edgecolor=COLORS[m], alpha=0.35, hatch="//", gid=m
        )
        std = np.std(test[label], ddof=1) if len(test[label]) > 1 else 0.0
        bars = ax.bar(x[i] + w / 2, np.mean(test[label]), w, yerr=std, capsize=3, color=COLORS[m], gid=m)
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.set_xticks(x, [label.replace(" (", "\n(") for label in test], fontsize=8)
    seeds = len(next(iter(test.values())))
    finish(
        ax,
        f"{title} (mean ± std over {seeds} seed{'s' * (seeds > 1)})",
        "",
        "accuracy",
        legend=False,
        ylim=(0.0, 1.08),
        yticks=np.linspace(0, 1, 6),
    )
    key = [
        Patch(facecolor="grey", edgecolor="grey", alpha=0.35, hatch="//", label="train accuracy"),
        Patch(facecolor="grey", label="test accuracy"),
    ]
    ax.legend(handles=key, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def dropout_figure(sampled: dict[str, list[dict]], explicit: dict[str, list[dict]], seeds: int = 1) -> Figure:
    """Dropout networks: the mean of N sampled sub-networks against weight scaling (accuracy; KL of
    the geometric and the arithmetic mean), and explicit ensembles of K networks trained without
    dropout. Rows as dltips.observe.subnetworks writes them. The accuracies differ by thousandths,
    so their axes are zoomed to the data, not 0–1."""
    fig = Figure(figsize=(14, 4.6), layout="constrained")
    left, mid, right = fig.subplots(1, 3)
    for a, rows in sampled.items():
        c, ns = COLORS[a], [r["n"] for r in rows]
        left.plot(ns, [r["arithmetic/acc"] for r in rows], marker="o", color=c, label=a, gid=a)
        left.axhline(rows[0]["weight_scaling/acc"], ls="--", color=c, gid=a)
        mid.plot(ns, [r["geometric/kl"] for r in rows], marker="o", color=c, label=a, gid=a)
        mid.plot(ns, [r["arithmetic/kl"] for r in rows], ls=":", color=c, gid=a)
        right.plot(
            [r["k"] for r in explicit[a]],
            [r["arithmetic/acc"] for r in explicit[a]],
            marker="o",
            color=c,
            label=a,
            gid=a,
        )
    finish(
        left,
        "Mean of N sampled sub-networks vs weight scaling",
        "N sampled sub-networks (log)",
        "test accuracy (axis zoomed to the data)",
        legend=False,
        xscale="log",
    )
    zoom(left)
    key = [
        Line2D([], [], color="grey", marker="o", label="mean of N sub-networks"),
        Line2D([], [], color="grey", ls="--", label="weight scaling: W·(1 − p)"),
    ]
    left.legend(handles=left.get_legend_handles_labels()[0] + key, fontsize=8, loc="best")
    finish(
        mid,
        "How close the two predictions are",
        "N sampled sub-networks (log)",
        "KL(mean of N ‖ weight scaling) (log)",
        legend=False,
        xscale="log",
        yscale="log",
    )
    means = [
        Line2D([], [], color="grey", marker="o", label="geometric mean of N"),
        Line2D([], [], color="grey", ls=":", label="arithmetic mean of N"),
    ]
    mid.legend(handles=mid.get_legend_handles_labels()[0] + means, fontsize=8, loc="best")
    finish(
        right,
        "Ensembles of K networks without dropout",
        "K networks averaged",
        "test accuracy of their average (axis zoomed)",
        legend=False,
    )
    zoom(right)
    right.legend(fontsize=8, loc="best")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(
        f"Dropout as an ensemble: {seeds} dropout network{'s' * (seeds > 1)} per activation (mean over them); "
        f"right: {len(next(iter(explicit.values())))} networks without dropout"
    )
    return fig


def normalization_figure(
    runs: dict[str, dict[str, list[Run]]], lr: dict[tuple[str, str], float], target: float
) -> Figure:
    """Training accuracy per full-batch epoch, one panel per table, each variant at its chosen rate."""
    fig = Figure(figsize=(10.5, 4.4), layout="constrained")
    for ax, (data, variants) in zip(fig.subplots(1, len(runs)), runs.items()):
        for name, seeds in variants.items():
            epoch, mean, std = series(seeds, "train/acc")
            ax.plot(epoch + 1, mean, color=COLORS[name], label=f"{name} (lr {lr[data, name]:g})", gid=name)
            ax.fill_between(epoch + 1, mean - std, mean + std, color=COLORS[name], alpha=0.15, gid=name)
        ax.axhline(target, color="black", ls=":", lw=1, label=f"{target:.0%}")
        finish(ax, data, "epoch = full-batch gradient step", "training accuracy", ylim=ACCURACY)
    seeds = len(next(iter(next(iter(runs.values())).values())))
    fig.suptitle(f"Raw vs standardized inputs, full-batch gradient descent (mean ± std over {seeds} seeds)")
    return fig


def nielsen_figure(ours: dict[str, list[np.ndarray]], published: list[float]) -> Figure:
    """‖∂C/∂b‖ per hidden layer at initialization: ours (mean, 95% interval over seeds) beside Nielsen's."""
    from lecture.lab import mean_ci

    fig = Figure(figsize=(7.2, 4.4), layout="constrained")
    ax = fig.subplots()
    layers = np.arange(1, len(published) + 1)
    width = 0.8 / (len(ours) + 1)
    for i, (name, seeds) in enumerate(ours.items()):
        stats = [mean_ci(v) for v in np.stack(seeds).T]
        ax.bar(
            layers + (i - len(ours) / 2) * width,
            [m for m, _ in stats],
            width,
            yerr=[h for _, h in stats],
            capsize=3,
            color=COLORS["sigmoid"],
            alpha=1.0 - 0.6 * i / max(len(ours) - 1, 1),  # the first most like his, the others fading
            label=name,
            gid="sigmoid",
        )
    ax.bar(layers + len(ours) / 2 * width, published, width, color="black", label="Nielsen ch. 5 (published)")
    ax.set_xticks(layers, [f"hidden layer {l}" for l in layers])
    seeds = len(next(iter(ours.values())))
    finish(
        ax,
        f"Sigmoid [784, 30, 30, 30, 10] on MNIST at initialization\n(ours: mean and 95% interval over {seeds} seeds)",
        "",
        "‖∂C/∂b‖ of the layer (log)",
        yscale="log",
    )
    return fig
