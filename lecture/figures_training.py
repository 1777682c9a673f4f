"""The report's figures about training: Adagrad, learning-rate decay, weight decay, early stopping,
dropout's advice (conventions: figures.py)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dltips.observe.intervals import mean_ci
from dltips.observe.plots import COLORS
from lecture.figures import ACCURACY, finish


def adagrad_contrast_figure(
    sequences: dict[str, tuple], gd: dict[str, list[float]], ada: dict[str, list[float]], contrast: float
) -> Figure:
    """The step each gradient of the two sequences gets, gradient descent (left) and Adagrad (right)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    t = np.arange(len(next(iter(sequences.values()))))
    for ax, (name, steps) in zip(axes, (("gradient descent: η·|g|", gd), ("Adagrad: η·|g| / √Σ g²", ada))):
        for i, (k, seq) in enumerate(sequences.items()):
            bars = ax.bar(t + (i - 0.5) * 0.4, steps[k], 0.4, color=("#9edae5", "#1f77b4")[i], label=k)
            ax.bar_label(bars, labels=[f"g={g:g}" for g in seq], fontsize=6, padding=1, rotation=90)
        ax.set_xticks(t)
        finish(ax, name, "update t", "|step| in units of η (log)", yscale="log", ylim=(1e-4, 300))
    fig.suptitle(f"The same last gradient 0.1: equal steps under gradient descent, {contrast:.0f}× apart under Adagrad")
    return fig


def curvature_figure(rho: dict[str, dict[int, list[float]]], outside: dict[int, float], scatter, last: int) -> Figure:
    """Left: Spearman ρ with |∂²C/∂w²| over training (mean, 95% interval over seeds) for Adagrad's σ
    and the current gradient, with the outside check; right: σ against |∂²C/∂w²| per parameter."""
    fig = Figure(figsize=(11.5, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for key, label, c in (
        ("sigma", "Adagrad's σ (RMS of past gradients)", COLORS["adagrad"]),
        ("gradient", "|∂C/∂w| at that step (whole training set)", COLORS["sgd"]),
    ):
        steps = sorted(rho[key])
        stats = [mean_ci(rho[key][t]) for t in steps]
        m, h = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
        left.plot(steps, m, marker="o", color=c, label=label, gid=key)
        left.fill_between(steps, m - h, m + h, color=c, alpha=0.2)
    left.plot(list(outside), list(outside.values()), "k*", ms=10, label="outside check (σ)")
    seeds = len(next(iter(rho["sigma"].values())))
    finish(
        left,
        f"Rank correlation with |∂²C/∂w²| (mean, 95% interval, {seeds} seeds)",
        "training step (log)",
        "Spearman ρ over the parameters",
        xscale="log",
        ylim=(0, 1),
    )
    sigma, h, sizes = scatter
    start = 0
    for i, n in enumerate(sizes):
        name = f"layer {i // 2 + 1} {'weights' if i % 2 == 0 else 'biases'}"
        right.scatter(h[start : start + n], sigma[start : start + n], s=4, alpha=0.5, color=f"C{i}", label=name)
        start += n
    finish(
        right,
        f"Each parameter at step {last} (seed 0)",
        "|∂²C/∂w²| (exact, log)",
        "σ (log)",
        xscale="log",
        yscale="log",
    )
    fig.suptitle("Adagrad's σ as an estimate of the second derivative: MNIST-1D 40-32-10 ReLU network")
    return fig


def lr_decay_figure(runs: dict) -> Figure:
    """Training loss per epoch (mean ± std over seeds) and η per epoch, per schedule."""
    from dltips.observe.tags import LR
    from lecture.lab import series

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1])
    names = {"constant": ("constant η", COLORS["sgd"]), "inverse_sqrt": ("η/√(t+1)", COLORS["sgd_inverse_sqrt"])}
    for s, rs in runs.items():
        label, c = names[s]
        epoch, mean, std = series(rs, "train/loss_epoch")
        left.plot(epoch + 1, mean, color=c, label=label, gid=s)
        left.fill_between(epoch + 1, mean - std, mean + std, color=c, alpha=0.2, gid=s)
        lr = [v for _, v in rs[0].scalars[LR]]  # per epoch
        right.plot(np.arange(1, len(lr) + 1), lr, marker="o", ms=3, color=c, label=label, gid=s)
    finish(
        left,
        f"Training loss (whole training set; mean ± std, {len(next(iter(runs.values())))} seeds)",
        "epoch",
        "training loss",
    )
    finish(right, "Learning rate", "epoch", r"$\eta^t$")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    fig.suptitle("Constant η = 0.5 vs η/√(t+1) from the same start: SGD on MNIST-1D, 2×32 ReLU")
    return fig


def noise_figure(acc: dict[str, np.ndarray], flips: dict[str, np.ndarray], noise: tuple[float, ...]) -> Figure:
    """Test accuracy (left) and the share of predictions changed (right) against the noise size,
    with and without weight decay: mean and 95% interval over seeds."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax, values in ((left, acc), (right, flips)):
        for v, a in values.items():
            stats = [mean_ci(a[:, i]) for i in range(len(noise))]
            m, h = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
            label = "weight decay λ = 0.01" if v == "weight_decay" else "no weight decay"
            ax.plot(noise, m, marker="o", color=COLORS[v], label=label, gid=v)
            ax.fill_between(noise, m - h, m + h, color=COLORS[v], alpha=0.2, gid=v)
    seeds = len(next(iter(acc.values())))
    finish(left, "Test accuracy under input noise", "noise σ (the inputs' σ is 1)", "test accuracy", ylim=ACCURACY)
    finish(
        right,
        "Test predictions the noise changes",
        "noise σ (the inputs' σ is 1)",
        "share of predictions",
        ylim=ACCURACY,
    )
    fig.suptitle(f"Gaussian noise added to the test digits (mean, 95% interval over {seeds} seeds)")
    return fig


def early_stopping_figure(
    curves: list[dict[str, list[float]]],
    chosen: list[int],
    stop: list[int],
    acc_best: list[float],
    acc_end: list[float],
) -> Figure:
    """Left: training and validation loss per epoch, each seed a thin line, the mean thick; the
    epochs chosen (lowest val/loss) and where a patience rule would stop. Right: training and
    validation accuracy per epoch the same way, and the test accuracy of the kept and the last
    weights (mean, 95% interval)."""
    fig = Figure(figsize=(12.5, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax, kind in ((left, "loss"), (right, "acc")):
        for tag, label, c in (
            (f"train/{kind}_epoch" if kind == "loss" else "train/acc", "training", COLORS["sgd"]),
            (f"val/{kind}", "validation", COLORS["early_stopping"]),
        ):
            n = min(len(cv[tag]) for cv in curves)
            values = np.array([cv[tag][:n] for cv in curves])
            for row in values:
                ax.plot(np.arange(1, n + 1), row, color=c, lw=0.6, alpha=0.5)
            ax.plot(np.arange(1, n + 1), values.mean(axis=0), color=c, lw=2.2, label=f"{label} (mean; thin: each seed)")
        for s in sorted(set(stop)):
            ax.axvline(s, color="black", ls=":", lw=0.8)
        ax.plot([], [], color="black", ls=":", lw=0.8, label="where patience 5 would stop")
    lows = [curves[i]["val/loss"][e] for i, e in enumerate(chosen)]
    left.plot(np.add(chosen, 1), lows, "v", color="black", ms=7, label="lowest validation loss: the weights kept")
    epochs = max(len(cv["val/acc"]) for cv in curves)
    for x, values, label in ((np.mean(chosen) + 1, acc_best, "kept weights"), (epochs, acc_end, "last weights")):
        m, h = mean_ci(values)
        right.errorbar(x, m, yerr=h, fmt="D", color="black", capsize=3, ms=6, mfc="white" if x == epochs else "black")
        right.annotate(f"test, {label}: {m:.3f}", (x, m), textcoords="offset points", xytext=(6, -12), fontsize=8)
    right.plot([], [], "D", color="black", label="test accuracy (mean, 95% interval)")
    finish(left, f"Loss ({len(curves)} seeds)", "epoch", "cross-entropy (log)", yscale="log")
    finish(right, f"Accuracy ({len(curves)} seeds)", "epoch", "accuracy", ylim=ACCURACY)
    fig.suptitle("Early stopping on MNIST-1D: the weights at the lowest validation loss against the last ones")
    return fig


def dropout_advice_figure(acc: dict[str, list[float]], plain: str, control: str) -> Figure:
    """Test accuracy per variant (mean, 95% interval), the means of the plain network and of the
    same-size control without dropout as lines."""
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    ax = fig.subplots()
    names = list(acc)
    for i, v in enumerate(names):
        m, h = mean_ci(acc[v])
        c = COLORS["none"] if v.startswith("no dropout") else COLORS["dropout"]
        bar = ax.bar(
            i,
            m,
            0.7,
            yerr=h,
            capsize=3,
            color=c,
            alpha=0.5 if v.startswith("no dropout") and v != plain else 1.0,
            gid=v,
        )
        ax.bar_label(bar, fmt="%.3f", fontsize=8, padding=2)
    ax.axhline(np.mean(acc[plain]), color="black", ls=":", lw=1, label=f"{plain} (dropout's cost is measured here)")
    ax.axhline(np.mean(acc[control]), color="black", ls="--", lw=1, label=f"{control} (the advice is judged here)")
    ax.set_xticks(range(len(names)), [v.replace(", ", "\n") for v in names], fontsize=8)
    seeds = len(next(iter(acc.values())))
    finish(
        ax,
        f"Dropout's advice on MNIST-1D (test accuracy, mean and 95% interval, {seeds} seeds)",
        "grey: no dropout; purple: hidden dropout p = 0.5",
        "test accuracy",
        ylim=(0, 1),
    )
    ax.legend(fontsize=8, loc="lower right")
    return fig


def keras_demo_figure(acc: dict[str, dict[str, list[float]]]) -> Figure:
    """The demo's networks side by side: training, test and noisy-test accuracy (mean, 95% interval
    over seeds; a diverged network has no bar), chance level dotted."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(acc))
    labels = {"train": "training", "test": "test", "noisy": "test, noisy pixels"}
    for i, (split, label) in enumerate(labels.items()):
        stats = [mean_ci(v[split]) if not np.isnan(v[split]).any() else (np.nan, 0.0) for v in acc.values()]
        ax.bar(
            x + (i - 1) * 0.27,
            [m for m, _ in stats],
            0.27,
            yerr=[h for _, h in stats],
            capsize=3,
            color=("#1f77b4", "#ff7f0e", "#7f7f7f")[i],
            label=label,
        )
    for i, v in enumerate(acc.values()):
        if np.isnan(v["train"]).all():
            ax.text(i, 0.5, "diverged:\nloss NaN", ha="center", fontsize=9)
        for j, split in enumerate(labels):  # each seed beside its bar: 3 seeds' intervals hide how they spread
            ax.plot(
                [i + (j - 1) * 0.27 + 0.07] * len(v[split]),
                v[split],
                "k.",
                ms=4,
                label="one seed" if i + j == 0 else None,
            )
    ax.axhline(0.1, color="k", ls=":", lw=1, label="chance (10 classes)")
    ax.set_xticks(x, list(acc), fontsize=8)
    ax.set_xlim(-0.6, len(acc) - 0.4)  # a diverged network's empty place stays in view
    finish(
        ax,
        "The lecture's Keras demo, step by step (mean, 95% interval over seeds)",
        "network",
        "accuracy",
        ylim=ACCURACY,
    )
    return fig
