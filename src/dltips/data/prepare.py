"""From a loaded `Dataset` to normalized train/val/test tensors on the training device."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.model_selection import train_test_split

from dltips.checks import is_int, is_number, require, require_choice
from dltips.data.sources import Dataset

NORMALIZATIONS = ("standard", "minmax", "none")


@dataclass
class Splits:
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    image_shape: tuple[int, int] | None
    shift: torch.Tensor  # normalization: x_normalized = (x − shift) / scale, per input dimension
    scale: torch.Tensor

    @property
    def num_features(self) -> int:
        return self.train[0].shape[1]


def normalization(x: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension (shift, scale) computed on the training inputs only."""
    if mode == "standard":  # the lecture's (x_i − m_i) / σ_i
        shift, scale = x.mean(dim=0), x.std(dim=0)
    elif mode == "minmax":
        shift, scale = x.amin(dim=0), x.amax(dim=0) - x.amin(dim=0)
    elif mode == "none":
        shift, scale = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    else:
        require_choice("data.normalize", mode, NORMALIZATIONS)
    # Constant inputs (the blank border pixels of digits) would divide by zero: leave their scale.
    return shift, torch.where(scale > 0, scale, torch.ones_like(scale))


def stratified_split(x, y, size, seed: int):
    """(x_rest, y_rest, x_part, y_part), with `size` samples (or fraction) in the part."""
    x_rest, x_part, y_rest, y_part = train_test_split(x, y, test_size=size, stratify=y, random_state=seed)
    return x_rest, y_rest, x_part, y_part


def prepare(
    dataset: Dataset,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    train_size: int | None,
    normalize: str,
    device: torch.device | str,
) -> Splits:
    """Split (stratified, deterministic in `seed`), subsample, normalize, and move to `device`."""
    for key, value in [("val_fraction", val_fraction), ("test_fraction", test_fraction)]:
        require(is_number(value) and 0.0 < value < 1.0, f"data.{key}", value, f"0 < {key} < 1")
    require_choice("data.normalize", normalize, NORMALIZATIONS)
    x, y = dataset.x, dataset.y
    if dataset.test is not None:
        test = dataset.test
    else:
        x, y, *test = stratified_split(x, y, test_fraction, seed)
    x, y, *val = stratified_split(x, y, val_fraction, seed)
    if train_size is not None:
        require(
            is_int(train_size) and dataset.num_classes <= train_size <= len(y),
            "data.train_size",
            train_size,
            f"null or an integer from {dataset.num_classes} (one per class) to {len(y)} (the training samples available)",
        )
        if len(y) - train_size >= dataset.num_classes:
            _, _, x, y = stratified_split(x, y, train_size, seed)
        elif train_size < len(y):
            # sklearn's stratified split needs one sample per class on *both* sides; dropping
            # fewer than num_classes samples can't be stratified anyway, so drop them at random.
            keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:train_size]
            x, y = x[keep], y[keep]
    shift, scale = normalization(x, normalize)

    def to_device(xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return ((xs - shift) / scale).to(device), ys.to(device)

    return Splits(
        train=to_device(x, y),
        val=to_device(*val),
        test=to_device(*test),
        num_classes=dataset.num_classes,
        image_shape=dataset.image_shape,
        shift=shift.to(device),
        scale=scale.to(device),
    )
