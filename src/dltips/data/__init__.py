"""Datasets as device tensors: sources, splitting and normalization, augmentation."""
from dltips.data.augment import Augment
from dltips.data.prepare import Splits, prepare
from dltips.data.sources import Dataset, load_digits, load_synthetic, load_torchvision

__all__ = ["Augment", "Dataset", "Splits", "load_digits", "load_synthetic", "load_torchvision", "prepare"]
