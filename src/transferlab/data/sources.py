"""Find the reader for a dataset given by built-in name or by path."""

from __future__ import annotations

from pathlib import Path

from transferlab.data.builtin import DATASETS
from transferlab.data.formats import read_csv_dataset, read_npz
from transferlab.data.idx import find_idx_pair, is_idx_file, read_idx
from transferlab.data.imagefiles import IMAGE_SUFFIXES, read_image_folder
from transferlab.data.rawdata import RawData
from transferlab.data.text import is_text_source, read_text_dataset
from transferlab.errors import DataError


def expected_sources() -> str:
    """What `data` may be, for error messages."""
    return (
        f"expected a built-in name ({', '.join(DATASETS)}) or a path to .npz/.csv/IDX/image folder or "
        f".jsonl (.npz with x, y; .csv with a label column and numeric features or a text column; .jsonl "
        f"with text and label keys; MNIST *-images-idx3-ubyte[.gz]; a folder with one sub-folder of images per class)"
    )


def dataset_name(data: str) -> str:
    """A short name for a dataset: the built-in name, or the file/folder name without suffixes."""
    if data in DATASETS:
        return data
    path = Path(data)
    name = path.name or path.resolve().name
    return name.removesuffix(".gz").split(".")[0] or name


def read_source(
    data: str,
    *,
    label_column: str,
    image_size: int | None,
    image_margin: int,
    target: str = "class",
    text_column: str = "text",
    test_data: str | None = None,
    image_center: str = "box",
) -> RawData:
    """Read a built-in dataset (a name wins over a same-named path: write ./name for the path) or a file.

    A .jsonl file, or a .csv whose header has `text_column`, is a text dataset; `test_data` (text
    datasets only) is a second file of the same kind read as the dataset's own test split.
    """
    # long: one dispatch over every dataset file format, each branch a few lines
    if data not in DATASETS and is_text_source(data, text_column):
        test_path = None
        if test_data is not None:
            test_path = Path(test_data).expanduser()
            if not test_path.is_file():
                raise DataError(
                    f"{test_data!r} (test_data): no such file; expected a .csv with a '{text_column}' column "
                    f"or a .jsonl file, like {data}"
                )
        return read_text_dataset(
            Path(data).expanduser(), text_column=text_column, label_column=label_column, test_path=test_path
        )
    if test_data is not None:
        raise DataError(
            f"{data}: test_data (--test-data) is read for text datasets only (a .csv with a '{text_column}' "
            f"column, or a .jsonl); this source is not one. Drop --test-data (an .npz can hold its own "
            f"x_test and y_test)"
        )
    numeric = target == "numeric"
    if numeric and (data in DATASETS or not Path(data).suffix.lower() in (".npz", ".csv")):
        raise DataError(
            f"{data}: numeric targets (--target numeric) are read from an .npz (array y) or a CSV (label "
            f"column) only; this source has class labels. Drop --target numeric"
        )
    if data in DATASETS:
        return DATASETS[data].load()  # read once per process
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(f"{data!r}: no such file or folder; {expected_sources()}")
    if path.is_dir():
        if find_idx_pair(path, "train") is not None:
            return read_idx(path)
        return read_image_folder(path, image_size, image_margin, image_center)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz(path, numeric=numeric)
    if suffix == ".csv":
        return read_csv_dataset(path, label_column, numeric=numeric)
    if is_idx_file(path):
        return read_idx(path)
    if suffix in IMAGE_SUFFIXES:
        raise DataError(
            f"{path} is a single image, not a labelled dataset; pass the folder that holds one sub-folder "
            f"of images per class (use load_inputs / predict for unlabelled images)"
        )
    raise DataError(f"{path}: unsupported file type '{path.suffix or '(none)'}'; {expected_sources()}")
