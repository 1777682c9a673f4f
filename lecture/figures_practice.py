"""The figures of the practical slides: the learning rate's size, the test data's normalization,
more training data, a bounded output layer (conventions: figures.py)."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from dltips.observe.intervals import mean_ci
from dltips.observe.plots import COLORS, colors
from lecture.figures import ACCURACY, finish


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def learning_rate_figure(curves: dict[str, list[list[float]]], rates: dict[str, float]) -> Figure:
    """The total training loss C(θ^t) per full-batch update, each seed a line, one colour per rate:
    every update (left, log scale) and the first ten (right, linear)."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    whole, start = fig.subplots(1, 2)
    palette = colors(list(curves))
    first = max(c[0] for cs in curves.values() for c in cs)
    for name, seeds in curves.items():
        for i, c in enumerate(seeds):
            c = np.asarray(c, dtype=float)
            label = f"{name}: η = {rates[name]:g}" if i == 0 else None
            for ax in (whole, start):
                ax.plot(np.arange(len(c)), c, color=palette[name], lw=1.2, alpha=0.8, label=label, gid=name)
    seeds = len(next(iter(curves.values())))
    finish(whole, "Every update (log scale)", "update t", "training loss C(θ^t) (log)", yscale="log")
    finish(start, "The first ten updates", "update t", "training loss C(θ^t)", xlim=(-0.3, 10.3), ylim=(0, 1.5 * first))
    fig.suptitle(
        f"Full-batch gradient descent on digits at three learning rates ({plural(seeds, 'seed')}, one line each): "
        "a line ends where the loss overflowed"
    )
    return fig


def normalized_test_figure(acc: dict[str, dict[str, list[float]]], rows: dict[str, int]) -> Figure:
    """Test accuracy per way of normalizing the test inputs (mean and 95% interval over seeds), grouped
    by table; `acc[table][way]`: the seeds; `rows`: each table's test set size."""
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    ax = fig.subplots()
    ways = list(next(iter(acc.values())))
    palette, width = own_palette(ways), 0.84 / len(ways)
    for i, way in enumerate(ways):
        stats = [mean_ci(acc[data][way]) for data in acc]
        x = np.arange(len(acc)) + (i - (len(ways) - 1) / 2) * width
        bars = ax.bar(
            x,
            [m for m, _ in stats],
            width,
            yerr=[h for _, h in stats],
            capsize=3,
            color=palette[way],
            label=way,
            gid=gid_of(way),
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(range(len(acc)), [f"{data} ({rows[data]} test rows)" for data in acc])
    seeds = len(acc[next(iter(acc))][ways[0]])
    finish(
        ax,
        f"The same trained networks, their test inputs normalized each way\n(mean and 95% interval over "
        f"{plural(seeds, 'seed')})",
        "",
        "test accuracy",
        legend=False,
        ylim=(0.0, 1.08),
        yticks=np.linspace(0, 1, 6),
    )
    ax.legend(title="test inputs normalized with", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


NAMED = {"training statistics": "standard", "raw inputs": "none"}  # the library's data.normalize values


def gid_of(way: str) -> str:
    """The colour name of a way to normalize the test inputs: the training statistics are the
    library's data.normalize=standard, raw inputs its none; the rest are named as they are."""
    return NAMED.get(way, way)


def own_palette(ways: list[str]) -> dict[str, str]:
    """standard's and none's colours; the test batches' own statistics in oranges, darker for larger batches."""
    own = [w for w in ways if w not in NAMED]
    shades = [to_hex(c) for c in colormaps["Oranges"](np.linspace(0.4, 0.85, len(own)))]
    return {w: COLORS[NAMED[w]] if w in NAMED else shades[own.index(w)] for w in ways}


def more_data_figure(sizes: tuple[int, ...], test: dict[int, list[float]], train: dict[int, list[float]]) -> Figure:
    """Test and training accuracy against the training set's size (log scale), mean and 95% interval."""
    fig = Figure(figsize=(7.2, 4.4), layout="constrained")
    ax = fig.subplots()
    c = colors(["accuracy"])["accuracy"]  # no name of the palette's: the cycle's first colour
    for values, label, style in ((train, "training accuracy", "--"), (test, "test accuracy", "-")):
        stats = [mean_ci(values[n]) for n in sizes]
        m, h = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
        ax.plot(sizes, m, ls=style, marker="o", color=c, label=label)
        ax.fill_between(sizes, m - h, m + h, color=c, alpha=0.2)
    seeds = len(test[sizes[0]])
    finish(
        ax,
        f"MNIST-1D, the same network and number of updates\n(mean and 95% interval over {plural(seeds, 'seed')})",
        "training signals (log scale)",
        "accuracy",
        xscale="log",
        ylim=(0.0, 1.03),  # a training accuracy of 1 stays inside the axes
    )
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{n:,}" for n in sizes])
    return fig


def bounded_output_figure(
    val: dict[str, dict[float, list[float]]], chosen: dict[str, float], outputs: dict[str, np.ndarray]
) -> Figure:
    """Left: validation accuracy per learning rate for each output layer (mean, 95% interval), the
    chosen rate ringed. Right: the values y_i the output layer gives the test inputs at that rate."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    palette = colors(list(val))
    for name, by_lr in val.items():
        lrs = sorted(by_lr)
        stats = [mean_ci(by_lr[lr]) for lr in lrs]
        left.errorbar(
            lrs,
            [m for m, _ in stats],
            yerr=[h for _, h in stats],
            marker="o",
            capsize=3,
            color=palette[name],
            label=name,
            gid=name,
        )
        left.plot(chosen[name], np.mean(by_lr[chosen[name]]), "o", ms=12, mfc="none", color=palette[name], gid=name)
    seeds = len(next(iter(next(iter(val.values())).values())))
    finish(
        left,
        f"Validation accuracy by learning rate\n(mean and 95% interval, {plural(seeds, 'seed')}; ringed: chosen)",
        "learning rate η (log)",
        "validation accuracy (a diverged seed: 0)",
        xscale="log",
        ylim=ACCURACY,
    )
    bins = np.linspace(-0.5, 1.5, 81)
    for name, y in outputs.items():
        outside = float(np.mean((y < 0) | (y > 1)))
        right.hist(
            np.clip(y, bins[0], bins[-1]),
            bins=bins,
            density=True,
            histtype="step",
            lw=1.5,
            color=palette[name],
            label=f"{name} ({outside:.1%} outside [0, 1])",
            gid=name,
        )
    for bound in (0, 1):
        right.axvline(bound, color="black", ls=":", lw=1)
    finish(
        right,
        "The outputs y_i on the test digits at the chosen rate\n(all classes and seeds; beyond ±0.5 piled at the edge)",
        "y_i",
        "density (log)",
        yscale="log",
    )
    fig.suptitle("The quadratic cost on an unbounded (identity) and on bounded output layers: digits, 2×64 ReLU")
    return fig
