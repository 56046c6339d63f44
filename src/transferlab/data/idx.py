"""MNIST IDX files (raw or .gz): one images file with its labels file, or a folder of the four."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from transferlab.data.labels import normalize_labels
from transferlab.data.rawdata import RawData, check_same_length
from transferlab.errors import DataError
from transferlab.limits import check_limit

# IDX type byte → big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/).
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_PAIRS = (("-images-idx3-ubyte", "-labels-idx1-ubyte"), (".images-idx3-ubyte", ".labels-idx1-ubyte"),
          ("-images.idx3-ubyte", "-labels.idx1-ubyte"))


def is_idx_file(path: Path) -> bool:
    """True for a file named like an IDX file (…-ubyte or …-ubyte.gz)."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith("-ubyte") and "idx" in name


def find_idx_pair(folder: Path, prefix: str) -> tuple[Path, Path] | None:
    """The `prefix`-images/labels files in folder (e.g. prefix "train"), raw or .gz, if present."""
    for images_name, labels_name in (("images-idx3-ubyte", "labels-idx1-ubyte"), ("images.idx3-ubyte", "labels.idx1-ubyte")):
        for gz in ("", ".gz"):
            images = folder / f"{prefix}-{images_name}{gz}"
            if images.is_file():
                return images, labels_path_for(images)
    return None


def labels_path_for(images: Path) -> Path:
    """The labels file that belongs to an images file by the standard MNIST naming."""
    for images_part, labels_part in _PAIRS:
        if images_part in images.name:
            base = images.name.replace(images_part, labels_part)
            for name in (base, base.removesuffix(".gz"), base.removesuffix(".gz") + ".gz"):
                if (images.parent / name).is_file():
                    return images.parent / name
            return images.parent / base
    raise DataError(
        f"{images}: cannot tell which labels file belongs to this IDX file; name the images file "
        f"'<prefix>-images-idx3-ubyte' and its labels '<prefix>-labels-idx1-ubyte' (optionally .gz)"
    )


def read_idx_array(path: Path) -> np.ndarray:
    """Read one IDX file into a numpy array of its stored type and shape.

    The header is read first and the data size it implies is checked against the input-bytes limit
    before anything is inflated; a .gz file is then streamed into an array of exactly that size, so a
    small file that inflates to GiB is refused, never unpacked.
    """
    try:
        opened = gzip.open(path) if path.name.endswith(".gz") else open(path, "rb")
        with opened as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES or magic[3] == 0:
                raise DataError(
                    f"{path}: not an IDX file (first bytes {magic[:4].hex()}); expected 00 00 <type> <ndim>, "
                    f"as in MNIST's train-images-idx3-ubyte"
                )
            ndim = magic[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataError(f"{path}: IDX header is cut short ({4 + len(dims)} of {4 + 4 * ndim} bytes); "
                                f"the file is truncated or corrupt, download it again")
            shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
            dtype = np.dtype(_DTYPES[magic[2]])
            expected = math.prod(shape) * dtype.itemsize  # Python ints: a header's 2**64 elements must not wrap to 0
            if math.prod(shape) == 0:
                raise DataError(f"{path}: IDX header says shape {shape}, which holds no data; the file is empty or corrupt")
            check_limit("input_bytes", expected, what=f"{path}: IDX header shape {shape} ({dtype.itemsize}-byte values)",
                        fix="check that this is the file you meant")
            data = bytearray()
            while len(data) < expected:  # streams: never more than `expected` bytes inflated, memory as read
                chunk = f.read(min(1 << 24, expected - len(data)))
                if not chunk:
                    break
                data += chunk
            got = len(data)
            extra = len(f.read(1)) if got == expected else 0
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc}); the file may be truncated or not gzip") from exc
    if got != expected or extra:
        size = f"{got}" if not extra else f"more than {expected}"
        raise DataError(
            f"{path}: IDX header says shape {shape} ({expected} bytes of data) but the file has "
            f"{size}; the file is truncated or corrupt, download it again"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_images(images_path: Path) -> np.ndarray:
    """Read an IDX images file into (N, 1, H, W) (or (N, C, H, W) for 4-D files)."""
    x = read_idx_array(images_path)
    if x.ndim == 3:
        return x[:, None]  # (N, 1, H, W)
    if x.ndim == 4:
        return x
    raise DataError(f"{images_path}: IDX images must have 3 dimensions (N, H, W); this file has shape {x.shape}")


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx_images(images_path)
    if not labels_path.is_file():
        raise DataError(
            f"{images_path}: its labels file {labels_path} was not found; put the labels file next to "
            f"the images file, named by the MNIST convention (…-images-idx3-ubyte ↔ …-labels-idx1-ubyte)"
        )
    y = read_idx_array(labels_path)
    source = f"{images_path} + {labels_path}"
    check_same_length(source, x, y, images_path.name, labels_path.name)
    return x, normalize_labels(y, source=str(labels_path), name=labels_path.name)


def read_idx(path: Path) -> RawData:
    """Read an IDX images file (with its labels file) or a folder with train-* and t10k-* files."""
    if path.is_dir():
        train = find_idx_pair(path, "train")
        test = find_idx_pair(path, "t10k")
        if train is None or test is None:
            missing = "train-images-idx3-ubyte" if train is None else "t10k-images-idx3-ubyte"
            raise DataError(f"{path}: IDX folder has no {missing}[.gz]; it needs train-* and t10k-* images and labels")
        x, y = _read_pair(*train)
        x_test, y_test = _read_pair(*test)
        return RawData(
            x=x, y=y, x_test=x_test, y_test=y_test, kind="image", source=str(path),
            x_names=(train[0].name, test[0].name),
        )
    x, y = _read_pair(path, labels_path_for(path))
    return RawData(x=x, y=y, kind="image", source=str(path), x_names=(path.name, ""))
