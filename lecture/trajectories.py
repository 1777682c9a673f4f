"""Momentum past a local minimum and a saddle point: the optimizers users train with, on 2-D surfaces,
drawn as a figure and as an animated GIF (the lecture shows Alec Radford's animations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox, IdentityTransform, TransformedBbox

from dltips.observe.plots import colors
from lecture.lab import Lab, Section, table
from lecture.surfaces import SURFACES, TWO_MINIMA_BARRIER, Surface, lecture_optimizer, trajectory

OPTIMIZERS = ("sgd", "momentum", "adagrad", "adam")
STEPS = 300
GRID = (0.001, 0.003, 0.01, 0.03)  # η for gradient descent and momentum on two_minima, fixed beforehand
NEAR = 0.1  # "near the saddle": within this distance of (0, 0)
LABELS = {"sgd": "gradient descent", "momentum": "momentum (ours, λ 0.9)", "adagrad": "adagrad (ours)", "adam": "adam"}


def run_surfaces(steps: int = STEPS) -> dict[str, dict[str, np.ndarray]]:
    """Every lecture optimizer on every surface from the surface's start, at the surface's rates."""
    return {
        s: {o: trajectory(surf.fn, lecture_optimizer(o, surf.lr[o]), surf.start, steps) for o in OPTIMIZERS}
        for s, surf in SURFACES.items()
    }


def steps_near_saddle(path: np.ndarray) -> int:
    return int((np.linalg.norm(path, axis=1) < NEAR).sum())


def escaped(path: np.ndarray, far: float = 1.0) -> int | None:
    """The first step with |y| ≥ far: off the saddle and on the way down (None: never)."""
    hits = np.nonzero(np.abs(path[:, 1]) >= far)[0]
    return int(hits[0]) if len(hits) else None


def contours(ax, surface: Surface, title: str, shade: bool = True) -> None:
    x0, x1, y0, y1 = surface.box
    x, y = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 160))
    z = surface.fn(torch.from_numpy(np.stack([x, y], axis=-1))).numpy()
    # An image, not filled contours: an animation redraws it every frame.
    log = z.min() >= 0  # Beale: a log scale, or its long valley is one flat colour
    if shade:  # off for a GIF: 256 colours dither a smooth shading into noise (and megabytes)
        ax.imshow(
            z + 1e-3 if log else z,
            extent=(x0, x1, y0, y1),
            origin="lower",
            aspect="auto",
            cmap="Greys",
            alpha=0.55,
            norm=LogNorm(1e-3, 1e5) if log else None,
        )
    ax.contour(
        x, y, z + 1e-3 if log else z, levels=np.logspace(-2, 5, 15) if log else 15, colors="grey", linewidths=0.4
    )
    ax.plot(*surface.minimum, "k*", ms=12)
    if surface.local_minimum:
        ax.plot(*surface.local_minimum, "kD", ms=6, mfc="none")
    ax.set(xlim=(x0, x1), ylim=(y0, y1), title=title, xlabel="x", ylabel="y")


TITLES = {
    "beale": "Beale's function (★ minimum; darker: higher)",
    "saddle": "saddle z = x² − y² (★ saddle point)",
    "two_minima": "x⁴ − 3x² + x + y² (★ global, ◇ local minimum)",
}


def trajectories_figure(
    paths: dict[str, dict[str, np.ndarray]], lrs: dict[str, dict[str, float]], shade: bool = True
) -> Figure:
    """One panel per surface, each optimizer's path over the surface's contours (shaded: its height)."""
    fig = Figure(figsize=(5 * len(paths), 4.8), layout="constrained")
    palette = colors(list(next(iter(paths.values()))))
    for ax, (s, by_opt) in zip(fig.subplots(1, len(paths), squeeze=False)[0], paths.items()):
        contours(ax, SURFACES[s], TITLES.get(s, s), shade)
        ax.plot(*next(iter(by_opt.values()))[0], "ko", ms=5)
        for o, p in by_opt.items():
            ax.plot(
                p[:, 0], p[:, 1], "-", lw=1.8, color=palette[o], label=f"{LABELS.get(o, o)}, lr {lrs[s][o]:g}", gid=o
            )
        ax.legend(fontsize=7, loc="lower left")
    steps = max(len(p) for by_opt in paths.values() for p in by_opt.values()) - 1
    sep = "\n" if len(paths) == 1 else ", "
    fig.suptitle(f"{steps} steps from the same start (●){sep}each optimizer built from its configs/optimizer/*.yaml")
    return fig


def animate(
    paths: dict[str, dict[str, np.ndarray]],
    lrs: dict[str, dict[str, float]],
    out: Path,
    frames: int = 45,
    dpi: int = 72,
) -> Path:
    """The figure's trajectories growing step by step, as a GIF (matplotlib's Pillow writer). The
    surfaces, axes and legends are drawn once into an image; each frame draws only the lines over it."""
    static = trajectories_figure(paths, lrs, shade=False)
    static.suptitle("the optimizers from the same start (●)")
    static.set_dpi(dpi)
    canvas = FigureCanvasAgg(static)
    drawn = [line for ax in static.axes for line in ax.get_lines() if line.get_gid()]
    for line in drawn:
        line.set_visible(False)  # the legends keep their own copies
    canvas.draw()
    background = np.asarray(canvas.buffer_rgba())
    height, width = background.shape[:2]
    pixels = [(line, line.axes.transData.transform(np.column_stack(line.get_data(orig=True)))) for line in drawn]
    boxes = {line: line.axes.bbox.bounds for line in drawn}  # (x0, y0, w, h) in pixels, from the bottom

    fig = Figure(figsize=static.get_size_inches(), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(background)
    ax.set_axis_off()
    lines = []
    for line, xy in pixels:  # clipped to its panel: the same pixels in both figures
        clip = TransformedBbox(Bbox.from_bounds(*boxes[line]), IdentityTransform())
        moving = ax.plot([], [], lw=1.8, color=line.get_color())[0]
        moving.set_clip_box(clip)  # after plot(), whose axes would clip to the whole figure
        lines.append((moving, xy))
    step = ax.text(8, 8, "", ha="left", va="top", fontsize=11, weight="bold")
    length = max(len(xy) for _, xy in lines)
    at = np.unique(np.geomspace(1, length, frames).astype(int))  # fast at first, where most happens

    def draw(i: int):
        for line, xy in lines:
            line.set_data(xy[: at[i], 0], height - xy[: at[i], 1])  # image rows count from the top
        step.set_text(f"step {at[i] - 1}")
        return [line for line, _ in lines] + [step]

    FuncAnimation(fig, draw, frames=len(at)).save(out, writer=PillowWriter(fps=10), dpi=dpi)
    return out


def momentum_surfaces(lab: Lab) -> Section:
    paths = run_surfaces()
    lrs = {s: dict(surf.lr) for s, surf in SURFACES.items()}
    two = SURFACES["two_minima"]
    grid = {
        (o, lr): trajectory(two.fn, lecture_optimizer(o, lr), two.start, STEPS)[-1]
        for o in ("sgd", "momentum")
        for lr in GRID
    }
    gd_stops = all(grid[("sgd", lr)][0] > TWO_MINIMA_BARRIER for lr in GRID)
    passed = [lr for lr in GRID if grid[("momentum", lr)][0] < TWO_MINIMA_BARRIER]
    near = {o: steps_near_saddle(p) for o, p in paths["saddle"].items()}
    crawl = near["sgd"] >= 3 * max(near["momentum"], 1)
    rows = []
    for s, by_opt in paths.items():
        surf = SURFACES[s]
        for o, p in by_opt.items():
            f = surf.fn(torch.from_numpy(p[-1])).item()
            out = escaped(p)
            extra = (
                f"{near[o]} steps within {NEAR} of ★, \\|y\\| ≥ 1 at step "
                f"{out if out is not None else f'> {len(p) - 1}'}"
                if s == "saddle"
                else f"distance to ★ {np.linalg.norm(p[-1] - np.array(surf.minimum)):.3f}"
            )
            rows.append(
                [s, LABELS[o], f"{lrs[s][o]:g}", len(p) - 1, f"({p[-1][0]:.3g}, {p[-1][1]:.3g})", f"{f:.3g}", extra]
            )
    grid_rows = [
        [
            f"{lr:g}",
            *[
                ("global" if grid[(o, lr)][0] < TWO_MINIMA_BARRIER else "local") + f" (x = {grid[(o, lr)][0]:.2f})"
                for o in ("sgd", "momentum")
            ],
        ]
        for lr in GRID
    ]
    gif = animate(paths, lrs, lab.root / "figures" / "trajectories.gif")
    return Section(
        title="Momentum carries past a local minimum; gradient descent crawls near a saddle point",
        claim="Gradient descent stops where the gradient is 0: at a local minimum, and nearly so near a saddle point. "
        "Momentum keeps part of its past movement, so it can roll over a low barrier past a local minimum and leaves a "
        "saddle faster.",
        rule=f"held if, on x⁴ − 3x² + x + y² from (2.2, 1), gradient descent ends in the local minimum's basin after "
        f"{STEPS} steps at every η in {list(GRID)} while momentum (λ = 0.9) at the same η ends in the global one for "
        f"at least half of them; and on z = x² − y² from (1, 0.001) at η = 0.01 gradient descent spends at least 3× as "
        f"many steps within {NEAR} of the saddle point as momentum.",
        held=gd_stops and 2 * len(passed) >= len(GRID) and crawl,
        headline=f"two minima: gradient descent ends in the local minimum at "
        f"{sum(grid[('sgd', lr)][0] > TWO_MINIMA_BARRIER for lr in GRID)}/{len(GRID)} rates, momentum passes it at "
        f"{len(passed)}/{len(GRID)} ({', '.join(f'{lr:g}' for lr in passed)}); saddle: steps within {NEAR} gradient "
        f"descent {near['sgd']}, momentum {near['momentum']}, adagrad {near['adagrad']}, adam {near['adam']}",
        table=table(["surface", "optimizer", "lr", "steps", "end", "f(end)", ""], rows)
        + "\n\nWhere gradient descent and momentum end on x⁴ − 3x² + x + y², by η (local: x > 0.17):\n\n"
        + table(["η", "gradient descent", "momentum"], grid_rows),
        figure=lab.figure(trajectories_figure(paths, lrs), "trajectories.png"),
        data="2-D test surfaces (no data set)",
        published="— (the lecture shows Alec Radford's animations; no number)",
        notes=[
            f"Animated: [figures/{gif.name}](figures/{gif.name}). Any optimizer config, on any of these surfaces: "
            "`uv run python scripts/trajectories.py optimizer=rmsprop optimizer.lr=0.01`.",
            "Each optimizer is the class and settings of configs/optimizer/<name>.yaml with the rate in the legend; "
            "adagrad and adam scale each coordinate's step by its own gradient history, "
            "so they get rates of their own.",
            "Beale's function is drawn for the lecture's picture; no claim rests on it.",
        ],
    )
