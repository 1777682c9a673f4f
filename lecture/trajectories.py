"""Momentum past a local minimum and a saddle point: the optimizers users train with, on 2-D surfaces,
drawn as a figure and as an animated GIF (the lecture shows Alec Radford's animations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox, IdentityTransform, TransformedBbox
from PIL import Image  # matplotlib's own dependency, its GIF writer

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


def contours(ax, surface: Surface, title: str, limits: tuple[float, float, float, float], shade: bool = True) -> None:
    """The surface's contours over `limits` (x0, x1, y0, y1), its minima marked; shaded by height if `shade`."""
    x0, x1, y0, y1 = limits
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
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y")
    ax.set_title(title, pad=12)  # room for a triangle on the top edge


TITLES = {
    "beale": "Beale's function (★ minimum)",
    "saddle": "saddle z = x² − y² (★ saddle point)",
    "two_minima": "x⁴ − 3x² + x + y² (★ global, ◇ local minimum)",
}
REACH = 0.5  # a panel widens by at most this share of the surface's box on each side to keep a path in view


def frame(box: tuple[float, float, float, float], paths: list[np.ndarray]) -> tuple[float, float, float, float]:
    """x0, x1, y0, y1 of a panel: the surface's box, widened (by at most REACH of it on each side) to
    every path that ends within that reach; a path that runs off (a saddle is unbounded) is cut at the edge."""
    x0, x1, y0, y1 = box
    w, h = x1 - x0, y1 - y0
    low, high = np.array([x0 - REACH * w, y0 - REACH * h]), np.array([x1 + REACH * w, y1 + REACH * h])
    settled = [p for p in paths if np.all((low <= p[-1]) & (p[-1] <= high))]
    points = np.clip(np.concatenate([np.array([[x0, y0], [x1, y1]]), *settled]), low, high)
    lo, hi, margin = points.min(0), points.max(0), 0.03 * np.array([w, h])
    lo = np.where(lo < [x0, y0], lo - margin, lo)  # a widened edge gets room for the line on it
    hi = np.where(hi > [x1, y1], hi + margin, hi)
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def leaves(path: np.ndarray, limits: tuple[float, float, float, float]) -> tuple[int, np.ndarray, str] | None:
    """Where `path` first leaves the panel: (the first step outside, the point on the edge, a triangle
    pointing the way it went); None if it stays in."""
    x0, x1, y0, y1 = limits
    out = np.nonzero((path[:, 0] < x0) | (path[:, 0] > x1) | (path[:, 1] < y0) | (path[:, 1] > y1))[0]
    if not len(out) or out[0] == 0:
        return None
    a = path[out[0] - 1]  # inside; b outside, perhaps infinite (the step that overflowed)
    b = np.nan_to_num(path[out[0]], nan=0.0, posinf=1e12, neginf=-1e12)
    d = b - a
    # how far along a → b each edge that b is beyond is crossed; the first crossing is where it leaves
    crossed = [
        ((hi if b[i] > hi else lo) - a[i]) / d[i]
        for i, (lo, hi) in enumerate(((x0, x1), (y0, y1)))
        if not lo <= b[i] <= hi
    ]
    edge = a + min(crossed) * d
    marker = (">" if d[0] > 0 else "<") if abs(d[0]) * (y1 - y0) > abs(d[1]) * (x1 - x0) else ("^" if d[1] > 0 else "v")
    return int(out[0]), edge, marker


def lr_labels(lrs: dict[str, dict[str, float]]) -> dict[str, str]:
    """Each optimizer's name and rate for one legend under all panels (rates left to right where they differ)."""
    labels = {}
    for o in next(iter(lrs.values())):
        rates = [f"{by_opt[o]:g}" for by_opt in lrs.values()]
        labels[o] = f"{LABELS.get(o, o)}, lr {rates[0] if len(set(rates)) == 1 else ' / '.join(rates)}"
    return labels


def trajectories_figure(
    paths: dict[str, dict[str, np.ndarray]], lrs: dict[str, dict[str, float]], shade: bool = True
) -> Figure:
    """One panel per surface, each optimizer's path over the surface's contours (shaded: its height),
    one legend under them all; a triangle marks where a path leaves its panel."""
    fig = Figure(figsize=(5 * len(paths), 5.2), layout="constrained")
    palette = colors(list(next(iter(paths.values()))))
    any_leaves = False
    for ax, (s, by_opt) in zip(fig.subplots(1, len(paths), squeeze=False)[0], paths.items()):
        limits = frame(SURFACES[s].box, list(by_opt.values()))
        contours(ax, SURFACES[s], TITLES.get(s, s), limits, shade)
        ax.plot(*next(iter(by_opt.values()))[0], "ko", ms=5)
        for o, p in by_opt.items():
            ax.plot(p[:, 0], p[:, 1], "-", lw=1.8, color=palette[o], label=o, gid=o)
            if gone := leaves(p, limits):
                _, edge, marker = gone
                ax.plot(*edge, marker, ms=10, color=palette[o], mec="black", mew=0.6, clip_on=False, gid=o)
                any_leaves = True
    labels = lr_labels(lrs)
    handles = [Line2D([], [], lw=2.2, color=palette[o], label=labels[o]) for o in palette]
    if any_leaves:
        handles.append(Line2D([], [], ls="none", marker="^", ms=9, color="grey", mec="black", label="leaves the panel"))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 2 * len(paths) - 1),
        fontsize=11,
        frameon=False,
    )
    steps = max(len(p) for by_opt in paths.values() for p in by_opt.values()) - 1
    sep = "\n" if len(paths) == 1 else "; "
    fig.suptitle(
        f"{steps} steps from the same start (●){sep}each optimizer built from its configs/optimizer/*.yaml"
        + (f"{sep}shading: the cost, darker is higher" if shade else "")
    )
    return fig


def animate(
    paths: dict[str, dict[str, np.ndarray]],
    lrs: dict[str, dict[str, float]],
    out: Path,
    frames: int = 45,
    dpi: int = 72,
) -> Path:
    """The figure's trajectories growing step by step, a dot at each optimizer's current point, as a GIF.
    The contours, axes and legend are drawn once into an image; each frame draws only the paths, the dots
    and the step over it."""
    static = trajectories_figure(paths, lrs, shade=False)
    length = max(len(p) for by_opt in paths.values() for p in by_opt.values())
    # The title counts the steps, so each frame writes it; the figure only keeps room for its widest.
    title = static.suptitle(f"From the same start (●), step {length - 1}", fontsize=13, color="none")
    static.set_dpi(dpi)
    still = FigureCanvasAgg(static)
    for line in (line for ax in static.axes for line in ax.get_lines() if line.get_gid()):
        line.set_visible(False)  # drawn frame by frame below; the legend has its own
    still.draw()
    background = np.asarray(still.buffer_rgba())
    height = background.shape[0]

    fig = Figure(figsize=static.get_size_inches(), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(background)
    ax.set_axis_off()

    def pixels(panel, xy: np.ndarray) -> np.ndarray:
        xy = panel.transData.transform(np.atleast_2d(xy))
        return np.column_stack([xy[:, 0], height - xy[:, 1]])  # image rows count from the top

    movers = []  # (path line, dot, its pixels, where it leaves: (step, triangle) or None)
    for panel, by_opt in zip(static.axes, paths.values()):
        clip = TransformedBbox(Bbox.from_bounds(*panel.bbox.bounds), IdentityTransform())
        colour = {line.get_gid(): line.get_color() for line in panel.get_lines() if line.get_gid()}
        for o, p in by_opt.items():
            line = ax.plot([], [], lw=1.8, color=colour[o])[0]
            dot = ax.plot([], [], "o", ms=8, color=colour[o], mec="black", mew=0.8, zorder=3)[0]
            for artist in (line, dot):
                artist.set_clip_box(clip)  # after plot(), whose axes would clip to the whole figure
            gone = leaves(p, (*panel.get_xlim(), *panel.get_ylim()))
            if gone:
                first, edge, marker = gone
                triangle = ax.plot(*pixels(panel, edge)[0], marker, ms=10, color=colour[o], mec="black", mew=0.6)[0]
                triangle.set_visible(False)
                gone = (first, triangle)
            movers.append((line, dot, pixels(panel, p), gone))
    box = title.get_window_extent()
    counter = ax.text(box.x0, height - box.y0, "", ha="left", va="bottom", fontsize=13)
    canvas = FigureCanvasAgg(fig)
    at = np.unique(np.geomspace(1, length, frames).astype(int))  # fast at first, where most happens

    def draw(i: int) -> Image.Image:
        for line, dot, xy, gone in movers:
            k = min(at[i], len(xy))  # a path that stopped early (escaped) stays as it ended
            line.set_data(xy[:k, 0], xy[:k, 1])
            dot.set_data(xy[k - 1 : k, 0], xy[k - 1 : k, 1])
            if gone:
                gone[1].set_visible(k > gone[0])
        counter.set_text(f"From the same start (●), step {at[i] - 1}")
        canvas.draw()
        return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())

    images = [draw(i) for i in range(len(at))]
    # One palette of 255 colours for all frames, from the last (every path drawn): a pixel that does not
    # move keeps its index, so each frame stores only what moved (the 256th index: transparent), and the
    # greys do not flicker. A palette per frame, full once the dots add their shades, stores every pixel.
    palette = images[-1].quantize(255, dither=Image.Dither.NONE)
    gif = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    gif[0].save(out, save_all=True, append_images=gif[1:], duration=100, loop=0, optimize=True)  # 10 frames/s
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
        f"many steps within {NEAR} of the saddle point as momentum. It would have failed had gradient descent left "
        "the local basin at some η, momentum passed it at fewer than half the rates, or the saddle not slowed "
        "gradient descent 3× more.",
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
