"""Copies of configs. copy.deepcopy walks an OmegaConf tree node by node through Python
(about 12 ms for a job's whole config); a pickle round trip gives the same config (flags,
parents, node types, interpolations) in a third of the time, and a pickled template gives
copies in a fifth: what a sweep or a stack of K members does once per job or member."""

from __future__ import annotations

import copy
import pickle

from omegaconf import DictConfig


def template(cfg: DictConfig) -> bytes | DictConfig:
    """`cfg` frozen as bytes, for `from_template` to copy as often as needed; the config itself
    where it cannot be pickled (a structured config whose class is not importable by its name):
    copied by deepcopy then."""
    try:
        return pickle.dumps(cfg, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return copy.deepcopy(cfg)


def from_template(frozen: bytes | DictConfig) -> DictConfig:
    return pickle.loads(frozen) if isinstance(frozen, bytes) else copy.deepcopy(frozen)


def copied(cfg: DictConfig) -> DictConfig:
    """copy.deepcopy(cfg), faster."""
    return from_template(template(cfg))
