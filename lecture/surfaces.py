"""Two-dimensional cost surfaces for watching optimizers move, and the optimizers that move on them.

Each surface is a function of a (..., 2) tensor with its gradient written out by hand (checked
against autograd in the tests); the optimizers follow autograd, as a network's training does.
The optimizers are built from the same configs a training run uses (configs/optimizer/*.yaml),
so `optimizer=momentum` on a surface is the class and the settings `dltips-train` would use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
from hydra.utils import instantiate

from dltips.config.validate import compose_train


def beale(p: torch.Tensor) -> torch.Tensor:
    """Beale's function: a flat, curved valley to its minimum 0 at (3, 0.5)."""
    x, y = p[..., 0], p[..., 1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def beale_grad(p: torch.Tensor) -> torch.Tensor:
    x, y = p[..., 0], p[..., 1]
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    dx = 2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1)
    dy = 2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y**2
    return torch.stack([dx, dy], dim=-1)


def saddle(p: torch.Tensor) -> torch.Tensor:
    """z = x² − y²: a saddle point at the origin, where the gradient vanishes."""
    return p[..., 0] ** 2 - p[..., 1] ** 2


def saddle_grad(p: torch.Tensor) -> torch.Tensor:
    return torch.stack([2 * p[..., 0], -2 * p[..., 1]], dim=-1)


def two_minima(p: torch.Tensor) -> torch.Tensor:
    """x⁴ − 3x² + x + y²: a local minimum at x ≈ 1.13 (f ≈ −1.07) on the way down from the right,
    a barrier at x ≈ 0.17 (f ≈ 0.08), the global minimum at x ≈ −1.30 (f ≈ −3.51)."""
    x, y = p[..., 0], p[..., 1]
    return x**4 - 3 * x**2 + x + y**2


def two_minima_grad(p: torch.Tensor) -> torch.Tensor:
    x, y = p[..., 0], p[..., 1]
    return torch.stack([4 * x**3 - 6 * x + 1, 2 * y], dim=-1)


TWO_MINIMA_BARRIER = 0.1693  # the root of 4x³ − 6x + 1 between the two minima: x > it is the local basin


@dataclass(frozen=True)
class Surface:
    fn: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor], torch.Tensor]
    start: tuple[float, float]
    minimum: tuple[float, float]  # the global minimum (saddle: the saddle point)
    box: tuple[float, float, float, float]  # x0, x1, y0, y1 of the figure
    lr: dict[str, float]  # a learning rate per optimizer config that makes 300 steps worth watching
    local_minimum: tuple[float, float] | None = None


SURFACES = {
    "beale": Surface(
        beale,
        beale_grad,
        (1.0, 1.4),
        (3.0, 0.5),
        (-0.5, 4.0, -1.5, 2.0),
        {"sgd": 0.01, "momentum": 0.01, "adagrad": 0.5, "adam": 0.05},
    ),
    "saddle": Surface(
        saddle,
        saddle_grad,
        (1.0, 1e-3),
        (0.0, 0.0),
        (-1.2, 1.2, -1.2, 1.2),
        {"sgd": 0.01, "momentum": 0.01, "adagrad": 0.5, "adam": 0.05},
    ),
    "two_minima": Surface(
        two_minima,
        two_minima_grad,
        (2.2, 1.0),
        (-1.3008, 0.0),
        (-2.3, 2.5, -1.5, 1.5),
        {"sgd": 0.01, "momentum": 0.01, "adagrad": 0.5, "adam": 0.05},
        local_minimum=(1.1309, 0.0),
    ),
}


def optimizer_factory(overrides: list[str]):
    """The optimizer `dltips-train` builds from these overrides (e.g. ["optimizer=adam",
    "optimizer.lr=0.05"]): its config instantiated as a partial waiting for the parameters."""
    return instantiate(compose_train(overrides).optimizer)


@lru_cache(maxsize=None)
def lecture_optimizer(name: str, lr: float):
    """optimizer_factory([f"optimizer={name}", f"optimizer.lr={lr}"]), composed once per name."""
    cfg = compose_train([f"optimizer={name}"]).optimizer
    cfg.lr = lr
    return instantiate(cfg)


def trajectory(
    fn: Callable[[torch.Tensor], torch.Tensor], make_optimizer, start: tuple[float, float], steps: int
) -> np.ndarray:
    """The points an optimizer visits from `start`: (steps + 1, 2). Stops early where the cost
    is no longer finite (a saddle is unbounded below: |f| beyond 1e6 counts as escaped)."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([p])
    points = [p.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        loss = fn(p)
        loss.backward()
        optimizer.step()
        points.append(p.detach().clone())
        if not torch.isfinite(p).all() or fn(p).abs() > 1e6:
            break
    return torch.stack(points).numpy()
