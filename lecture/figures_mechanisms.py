"""The report's figures about mechanisms: ReLU's variants as maxout, ReLU's speed, momentum's sum,
weight decay's update, dropout's masks (conventions: figures.py)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from dltips.observe.intervals import mean_ci
from dltips.observe.plots import COLORS
from lecture.figures import finish

ZERO = "log; an exact 0 not drawn"  # a log axis' label where a difference may be exactly 0


def positive(values) -> np.ndarray:
    """The values with each exact 0 as nan: a log axis has no place for it."""
    values = np.asarray(values, dtype=float)
    return np.where(values > 0, values, np.nan)


def maxout_variants_figure(
    alpha: float, found: dict[str, dict[str, list[float]]], control: dict[str, dict[str, list[float]]], limit: float
) -> Figure:
    """Left: a PReLU unit with slope α and its two maxout pieces; right: per network and quantity the
    largest |Δ| over seeds between it and its maxout form, beside the control (piece 0 at 0).
    found[activation][quantity]: one value per seed."""
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    z = np.linspace(-3, 3, 121)
    left.plot(z, np.where(z > 0, z, alpha * z), lw=5, alpha=0.45, color=COLORS["prelu"], label="PReLU", gid="prelu")
    left.plot(z, alpha * z, ls="--", lw=1, color="grey", label=f"piece 0: α·z (α = {alpha:.3f})")
    left.plot(z, z, ls=":", lw=1, color="black", label="piece 1: z")
    left.plot(
        z, np.maximum(alpha * z, z), lw=1.6, color=COLORS["maxout"], label="maxout: the larger piece", gid="maxout"
    )
    finish(left, "A trained PReLU unit (seed 0) as max of two pieces", "z = w·x + b", "unit output")
    groups = [(a, q) for a in found for q in found[a]]
    x = np.arange(len(groups))
    for i, (a, q) in enumerate(groups):
        for offset, values, hatch in ((-0.2, found[a][q], None), (0.2, control[a][q], "//")):
            right.bar(
                x[i] + offset,
                positive(max(values)),
                0.38,
                color=COLORS[a],
                alpha=0.4 if hatch else 1.0,
                hatch=hatch,
                edgecolor="white",
                gid=a,
            )
    right.axhline(limit, color="black", ls=":", lw=1)
    right.set_xticks(x, [f"{a}\n{q}" for a, q in groups], fontsize=8)
    seeds = len(next(iter(next(iter(found.values())).values())))
    finish(
        right,
        f"Largest |Δ| on the test digits, worst of {seeds} seeds",
        "",
        f"largest |Δ| ({ZERO})",
        legend=False,
        yscale="log",
    )
    right.legend(
        handles=[
            Patch(color="grey", label="maxout built from the network's weights"),
            Patch(facecolor="grey", alpha=0.4, hatch="//", edgecolor="white", label="control: piece 0 at 0 (ReLU)"),
            Line2D([], [], color="black", ls=":", label=f"rule: below {limit:g}"),
        ],
        fontsize=8,
        loc="center right",
    )
    fig.suptitle("Leaky ReLU and PReLU are 2-piece maxout units: max(α·z, z) with α ≤ 1")
    return fig


def relu_fast_figure(times: dict[str, dict[str, np.ndarray]], decided: str) -> Figure:
    """Left: µs per forward+backward call at the `decided` size (mean, 95% interval); right: ReLU's
    time over sigmoid's and tanh's per repetition, at each size. times[size][activation]: seconds per rep."""
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    names = list(times[decided])
    for i, n in enumerate(names):
        m, h = mean_ci(times[decided][n] * 1e6)
        bars = left.bar(i, m, 0.7, yerr=h, capsize=3, color=COLORS[n], label=n, gid=n)
        left.bar_label(bars, fmt="%.0f", fontsize=8, padding=2)
    left.set_xticks(range(len(names)), names, fontsize=8)
    reps = len(times[decided][names[0]])
    finish(
        left,
        f"Forward + backward, {decided}, one thread\n(mean and 95% interval over {reps} repetitions)",
        "",
        "µs per call",
    )
    for size, t in times.items():
        for other in ("sigmoid", "tanh"):
            right.plot(
                np.arange(1, reps + 1),
                t["relu"] / t[other],
                marker="o" if size == decided else ".",
                ls="-" if size == decided else "--",
                color=COLORS[other],
                label=f"relu / {other}, {size}",
                gid=other,
            )
    right.axhline(1.0, color="black", ls=":", lw=1, label="as fast")
    finish(right, "ReLU's time over the others', each repetition", "repetition", "time ratio", ylim=(0, 1.8))
    right.legend(fontsize=8, loc="upper center", ncol=2)  # above the lines: ratios stay near or below 1
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("ReLU is fast to compute: no exponential, a derivative of 0 or 1")
    return fig


def momentum_sum_figure(momentum: float, steps: int, errors: dict[str, np.ndarray], limit: float) -> Figure:
    """Left: the weight λ^k of the gradient k steps back in v; right: the relative error of each
    comparison per step, the worst over seeds. errors[name]: (seeds, steps)."""
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    k = np.arange(steps)
    left.plot(k, momentum**k, color=COLORS["momentum"], label=f"λ^k, λ = {momentum:g}", gid="momentum")
    left.axvline(1 / (1 - momentum), color="black", ls=":", lw=1, label=f"k = 1/(1 − λ) = {1 / (1 - momentum):.0f}")
    finish(left, "How much the gradient k steps back weighs in v", "k: steps back", "weight (log)", yscale="log")
    for name, e in errors.items():
        control = name.startswith("control")  # plain gradient descent's step: drawn in sgd's colour
        right.plot(
            np.arange(1, e.shape[1] + 1),
            positive(e.max(axis=0)),
            color=COLORS["sgd" if control else "momentum"],
            ls=":" if control else "-" if name == "velocity" else "--",
            label=name,
            gid="sgd" if control else "momentum",
        )
    right.axhline(limit, color="black", ls="-.", lw=1, label=f"rule: below {limit:g}")
    finish(
        right,
        f"Our Momentum vs the weighted sum, worst of {len(next(iter(errors.values())))} seeds",
        "step t",
        f"‖ours − formula‖/‖formula‖ ({ZERO})",
        yscale="log",
    )
    fig.suptitle("Momentum: v^t = −η Σ λ^(t−1−i) ∇C(θ^i), a weighted sum of every past gradient")
    return fig


def weight_decay_update_figure(gaps: dict[str, np.ndarray], norms: dict[str, list[float]], limit: float) -> Figure:
    """Left: per step, the largest |Δ| of the parameters from the formulas (worst over seeds);
    right: ‖W‖ after training without and with weight decay, seed by seed. gaps[name]: (seeds, steps)."""
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, (name, g) in enumerate(gaps.items()):
        left.plot(
            np.arange(1, g.shape[1] + 1),
            positive(g.max(axis=0)),
            marker="o",
            ms=3,
            ls="--" if name.startswith("control") else "-",
            color=f"C{i}",
            label=name,
        )
    left.axhline(limit, color="black", ls=":", lw=1, label=f"rule: below {limit:g}")
    finish(
        left,
        "The optimizer's step vs the formula",
        "step",
        f"largest |Δ| ({ZERO})",
        yscale="log",
    )
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    names = list(norms)
    for i, n in enumerate(names):
        m, h = mean_ci(norms[n])
        right.bar(i, m, 0.6, yerr=h, capsize=3, color=COLORS[n], label=n, gid=n)
    for seed, values in enumerate(zip(*norms.values())):
        right.plot(
            range(len(names)), values, color="black", lw=0.8, marker=".", label="one seed" if seed == 0 else None
        )
    right.set_xticks(range(len(names)), names)
    finish(right, "‖W‖ after training (mean, 95% interval; lines: seeds)", "", "‖W‖, all weight matrices")
    fig.suptitle("Weight decay: w ← (1 − ηλ)w − η∂C/∂w on the weights, b ← b − η∂C/∂b on the biases")
    return fig


def dropout_masks_figure(masks: np.ndarray, shares: np.ndarray, p: float) -> Figure:
    """Left: one example's mask in hidden layer 1 at each update (units × updates, 1 kept); right:
    the share of layer 1's units dropped per update, each seed. shares: (seeds, updates)."""
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(masks, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    finish(
        left,
        "The mask of one example's row in each mini-batch (seed 0)\nwhite: kept, black: dropped",
        "update",
        "hidden unit (layer 1)",
        legend=False,
    )
    updates = np.arange(1, shares.shape[1] + 1)
    for seed, s in enumerate(shares):
        right.plot(updates, s, color=COLORS["dropout"], lw=0.8, alpha=0.5, label="each seed" if seed == 0 else None)
    right.plot(updates, shares.mean(axis=0), color=COLORS["dropout"], lw=2, label="mean over seeds", gid="dropout")
    right.axhline(p, color="black", ls=":", lw=1, label=f"p = {p:g}")
    finish(right, "Share of layer 1's units dropped, each update", "update", "share dropped", ylim=(0, 1))
    fig.suptitle(f"Dropout draws a new mask for every mini-batch (p = {p:g})")
    return fig
