"""Argument checks for the constructors: one ValueError that names the key, the value and what
is allowed, `Invalid <key>: <value!r>; allowed: <what>`, whatever the type of the bad value.

Plain Python, no Hydra: the classes stay usable from a notebook. Booleans are not numbers
here, though Python says `True == 1`: `depth=true` is a typo, not a one-layer network.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float (nan and inf included; range checks reject them where they matter)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"Invalid {key}: {value!r}; allowed: {allowed}")


def require_int(key: str, value: Any, minimum: int) -> None:
    require(is_int(value) and value >= minimum, key, value, f"an integer >= {minimum}")


def require_number(key: str, value: Any, minimum: float = 0.0) -> None:
    """A finite number >= minimum."""
    require(is_number(value) and math.isfinite(value) and value >= minimum, key, value, f"a number >= {minimum:g}")


def require_choice(key: str, value: Any, choices: Collection[str]) -> None:
    # isinstance first: `value in choices` on a dict of choices fails on an unhashable list.
    require(isinstance(value, str) and value in choices, key, value, ", ".join(choices))
