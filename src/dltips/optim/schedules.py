"""Learning-rate schedules: pure functions from the step (or epoch) t = 0, 1, … to a factor
that multiplies the base learning rate, η^t = η · factor(t)."""
from __future__ import annotations

import math

INTERVALS = ("epoch", "step")


def constant(t: int) -> float:
    return 1.0


def inverse_sqrt(t: int) -> float:
    """The lecture's 1/t decay: η^t = η / √(t + 1)."""
    return 1.0 / math.sqrt(t + 1)


def step_decay(t: int, step_size: int, gamma: float) -> float:
    """Multiply by `gamma` every `step_size` intervals."""
    if not isinstance(step_size, int) or step_size < 1:
        raise ValueError(f"Invalid scheduler.factor.step_size: {step_size!r}; allowed: an integer >= 1")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"Invalid scheduler.factor.gamma: {gamma!r}; allowed: 0 < gamma <= 1")
    return gamma ** (t // step_size)
