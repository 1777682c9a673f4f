"""Learning-rate schedules: pure functions from the step (or epoch) t = 0, 1, … to a factor
that multiplies the base learning rate, η^t = η · factor(t)."""

from __future__ import annotations

import math

from dltips.checks import is_number, require, require_int

INTERVALS = ("epoch", "step")


def constant(t: int) -> float:
    return 1.0


def inverse_sqrt(t: int) -> float:
    """The lecture's 1/t decay: η^t = η / √(t + 1)."""
    return 1.0 / math.sqrt(t + 1)


def step_decay(t: int, step_size: int, gamma: float) -> float:
    """Multiply by `gamma` every `step_size` intervals."""
    require_int("scheduler.factor.step_size", step_size, 1)
    require(is_number(gamma) and 0.0 < gamma <= 1.0, "scheduler.factor.gamma", gamma, "0 < gamma <= 1")
    return gamma ** (t // step_size)
