"""Datasets as device tensors: sources, splitting and normalization, augmentation."""

from dltips.data.augment import Augment
from dltips.data.mnist1d import load_mnist1d
from dltips.data.prepare import Splits, prepare
from dltips.data.sources import (
    Dataset,
    load_digits,
    load_mnist5k,
    load_sklearn_table,
    load_synthetic,
    load_torchvision,
)

__all__ = [
    "Augment",
    "Dataset",
    "Splits",
    "load_digits",
    "load_mnist1d",
    "load_mnist5k",
    "load_sklearn_table",
    "load_synthetic",
    "load_torchvision",
    "prepare",
]
