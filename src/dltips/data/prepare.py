"""From a loaded `Dataset` to normalized train/val/test tensors on the training device."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

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


def part_size(fraction: float, n: int) -> int:
    """How many of n samples a split fraction takes: rounded up, so that no split is empty."""
    return math.ceil(fraction * n)


def check_fractions(n: int, num_classes: int, val_fraction: float, test_fraction: float | None) -> None:
    """The test split (none where the source has its own) takes its fraction of all n samples,
    validation its fraction of the rest; at least one training sample per class must remain.
    Checked before splitting: an empty training split would otherwise surface as a torch
    warning from the normalization and a batch size error."""
    rest = n
    if test_fraction is not None:
        rest = n - part_size(test_fraction, n)
        require(
            rest >= num_classes + 1,
            "data.test_fraction",
            test_fraction,
            f"a fraction of the {n} samples that leaves at least {num_classes + 1} for training and validation "
            f"({num_classes} training samples, one per class, and one validation sample); this leaves {rest}",
        )
    n_train = rest - part_size(val_fraction, rest)
    of = f"the {rest} samples left after the test split" if test_fraction is not None else f"the {rest} samples"
    require(
        n_train >= num_classes,
        "data.val_fraction",
        val_fraction,
        f"a fraction of {of} that leaves at least {num_classes} for training (one per class); this leaves {n_train}",
    )


def stratified_split(x: torch.Tensor, y: torch.Tensor, size: int | float, seed: int):
    """(x_rest, y_rest, x_part, y_part): `size` samples in the part (an integer, or a fraction of
    len(y) rounded up), every class in proportion: ⌊share⌋ each, then one more for the classes
    with the largest remainders. Which samples: a permutation seeded by `seed`."""
    n = len(y)
    ok = (is_int(size) and 0 <= size <= n) or (is_number(size) and not is_int(size) and 0 < size < 1)
    require(ok, "split size", size, f"an integer from 0 to {n} or a fraction between 0 and 1")
    n_part = size if is_int(size) else part_size(size, n)
    _, cls, counts = torch.unique(y, return_inverse=True, return_counts=True)
    share = counts.double() * n_part / n
    take = share.floor().long()
    take[torch.argsort(share - take, descending=True, stable=True)[: n_part - int(take.sum())]] += 1
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    grouped = perm[torch.argsort(cls[perm], stable=True)]  # by class, in random order within each
    rank = torch.arange(n) - (counts.cumsum(0) - counts)[cls[grouped]]  # position within its class
    in_part = rank < take[cls[grouped]]
    part, rest = grouped[in_part].sort().values, grouped[~in_part].sort().values
    return x[rest], y[rest], x[part], y[part]


def check_dataset(dataset: Dataset) -> None:
    """What a data source returned, checked where it is loaded: a NaN in the inputs would
    otherwise read as a diverged run ("the learning rate is likely too high"), and a label out
    of range as an index error inside the loss."""
    # One training sample per class, one for validation and, unless the source has its own, one for test.
    least = dataset.num_classes + (1 if dataset.test is not None else 2)
    require(
        len(dataset.y) >= least,
        "data.source",
        dataset.name,
        f"a data set of at least {least} samples ({dataset.num_classes} classes: one training sample per class, "
        f"one for validation{'' if dataset.test is not None else ', one for test'}); it has {len(dataset.y)}",
    )
    parts = [("", dataset.x, dataset.y)] + ([(" (its test split)", *dataset.test)] if dataset.test is not None else [])
    for where, x, y in parts:
        bad = (~torch.isfinite(x)).any(dim=tuple(range(1, x.dim()))) if x.numel() else torch.zeros(0, dtype=torch.bool)
        require(
            not bad.any(),
            "data.source",
            dataset.name,
            f"finite inputs; {int(bad.sum())} of its {len(x)} samples{where} hold NaN or inf "
            f"(the first: sample {int(bad.nonzero()[0]) if bad.any() else -1})",
        )
        labels = not y.is_floating_point() and not y.is_complex() and y.dim() == 1 and len(y) == len(x)
        in_range = labels and (len(y) == 0 or (int(y.min()) >= 0 and int(y.max()) < dataset.num_classes))
        found = (
            f"{int(y.min())} to {int(y.max())}"
            if labels and len(y)
            else f"a {y.dtype} tensor of shape {tuple(y.shape)}"
        )
        require(
            in_range,
            "data.source",
            dataset.name,
            f"one integer label per sample from 0 to {dataset.num_classes - 1} ({dataset.num_classes} classes); "
            f"its labels{where} are {found}",
        )


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
    check_dataset(dataset)
    x, y = dataset.x, dataset.y
    check_fractions(len(y), dataset.num_classes, val_fraction, None if dataset.test is not None else test_fraction)
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
            f"null or an integer from {dataset.num_classes} (one per class) "
            f"to {len(y)} (the training samples available)",
        )
        if train_size < len(y):
            _, _, x, y = stratified_split(x, y, train_size, seed)
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
