"""load_task: a dataset in, a Task with a fixed test split out; load_inputs for unlabelled inputs.

Text classification reads a .csv with a text column (default "text") or a .jsonl file (one
{"text": ..., "label": ...} object per line); the task's inputs are 1-D object arrays of str for a
text backbone (such as minilm) to tokenize. The reference text set is TREC question classification
(6 classes, 5,452 train / 500 test questions):

    transferlab train --data ../shared/data/trec/train.csv --test-data ../shared/data/trec/test.csv ...
    >>> task = load_task("../shared/data/trec/train.csv", test_data="../shared/data/trec/test.csv")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from transferlab.data.builtin import DATASETS
from transferlab.data.classes import class_mapping, parse_classes
from transferlab.data.formats import input_kind, load_npz_arrays, read_csv
from transferlab.data.idx import is_idx_file, read_idx_images
from transferlab.data.imagefiles import IMAGE_SUFFIXES, image_files, is_image_file, read_images
from transferlab.data.images import (
    check_framing, convert_channels, frame_images, preprocess_inputs, scale_divisor, to_unit,
)
from transferlab.data.labels import encode_labels
from transferlab.data.rawdata import RawData, check_finite, check_not_empty
from transferlab.data.sources import dataset_name, expected_sources, read_source
from transferlab.data.splits import holdout_mask
from transferlab.data.task import InputSpec, Task
from transferlab.data.text import check_text_column, check_text_options, is_text_source, read_text_inputs
from transferlab.errors import DataError


def load_task(
    data: str,
    *,
    classes: str | Sequence[int | str] | None = None,
    image_size: int | None = None,
    image_margin: int = 0,
    label_column: str = "label",
    test_fraction: float = 0.2,
    image_center: str = "box",
    target: Literal["class", "numeric"] = "class",
    text_column: str = "text",
    test_data: str | None = None,
    feature_scale: dict[str, Any] | None = None,
) -> Task:
    """Load a built-in dataset or a file into a Task with a fixed, seed-independent test split.

    A numeric target's feature vectors are standardised (per feature, by the mean and std of the
    training pool, recorded in `task.preprocessing` as feature_mean / feature_std), or by a model's
    recorded `feature_scale` (a preprocessing dict with those keys) so it sees inputs on its own scale.

    The test split is the dataset's own, or a stratified `test_fraction` of it chosen with a fixed
    seed before classes are selected, so a class selection's test rows are a subset of the full
    dataset's test rows. `target="numeric"` reads the labels as numbers to regress (npz or CSV);
    its test split is a fixed random `test_fraction`.

    A .jsonl file, or a .csv with a `text_column` column, is a text dataset (inputs are str); its
    `test_data` file, if given, is its own test split. Labels of both files are encoded together.

    Example:
        >>> task = load_task("digits", classes="0-4", image_size=28, image_margin=4)
        >>> task.input_spec, task.class_names
        (InputSpec(kind='image', shape=(1, 28, 28), any_size=False), ['0', '1', '2', '3', '4'])
        >>> load_task("trec/train.csv", test_data="trec/test.csv").input_spec  # doctest: +SKIP
        InputSpec(kind='text', shape=())
    """
    # long: the signature and docstring name every data option; the body dispatches on the source kind once
    if target not in ("class", "numeric"):
        raise DataError(f"--target must be 'class' or 'numeric'; got {target!r}")
    text = str(data) not in DATASETS and is_text_source(str(data), text_column)
    if not text and text_column != "text" and str(data) not in DATASETS:
        check_text_column(str(data), text_column)  # a text column was named: it must be there
    if text:
        check_text_options(str(data), image_size=image_size, image_margin=image_margin, target=target,
                           image_center=image_center)
    check_framing(image_size, image_margin, image_center)
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be between 0 and 1 (exclusive); got {test_fraction}")
    name = dataset_name(str(data))
    if target == "numeric" and classes is not None:
        raise DataError("--classes selects classes, but --target numeric has none; drop --classes")
    raw = read_source(
        str(data), label_column=label_column, image_size=image_size, image_margin=image_margin, target=target,
        text_column=text_column, test_data=None if test_data is None else str(test_data), image_center=image_center,
    )
    if raw.kind == "vector" and image_size is not None:
        raise DataError(
            f"{raw.source} holds feature vectors, not images; image_size/image_margin apply to images only. "
            f"Drop --image-size and --image-margin"
        )
    _scale_and_frame(raw, image_size, image_margin, image_center)
    if target == "numeric":
        return _numeric_task(name, raw, test_fraction, image_size, image_margin, feature_scale, image_center)
    labels, class_names = encode_labels(*([raw.y] + ([raw.y_test] if raw.has_own_test else [])), source=raw.source)
    if raw.has_own_test:
        x_all = np.concatenate([raw.x, raw.x_test])
        y_all = np.concatenate(labels)
        pool_index = np.arange(len(raw.x))
        test_index = len(raw.x) + np.arange(len(raw.x_test))
    else:
        x_all, y_all = raw.x, labels[0]
        held_out = holdout_mask(y_all, class_names, test_fraction, purpose="test")
        pool_index, test_index = np.flatnonzero(~held_out), np.flatnonzero(held_out)
    selected = None
    if classes is not None:
        selected = parse_classes(classes)
        mapping = class_mapping(selected, class_names, dataset=name)
        y_all = mapping[y_all]  # dropped classes become -1
        pool_index = pool_index[y_all[pool_index] >= 0]
        test_index = test_index[y_all[test_index] >= 0]
        class_names = selected
    _check_task(name, class_names, pool_index, test_index)
    _check_every_class_trains(raw, name, class_names, y_all[pool_index], y_all[test_index])
    spec = InputSpec(raw.kind, tuple(int(s) for s in raw.x.shape[1:]))
    if spec.kind == "text":
        preprocessing = {
            "image_size": None, "image_margin": None, "classes": selected, "scale": None, "scale_divisor": None,
            "channels": None, "text_column": text_column, "label_column": label_column,
        }
    else:
        preprocessing = {
            "image_size": image_size,
            "image_margin": image_margin,
            "image_center": image_center,
            "classes": selected,
            "scale": raw.scale,
            "scale_divisor": raw.scale_divisor,
            "channels": spec.shape[0] if spec.kind == "image" else None,
        }
    return Task(
        name=name,
        x_pool=x_all[pool_index], y_pool=y_all[pool_index],
        x_test=x_all[test_index], y_test=y_all[test_index],
        class_names=class_names, input_spec=spec, source=raw.source,
        preprocessing=preprocessing,
        pool_index=pool_index, test_index=test_index,
    )


def scale_features(x: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """Standardise feature vectors (N, D) by a task's recorded feature_mean / feature_std (unchanged without them)."""
    mean, std = preprocessing.get("feature_mean"), preprocessing.get("feature_std")
    if mean is None or std is None or x.ndim != 2:
        return x
    if x.shape[1] != len(mean):
        raise DataError(f"inputs have {x.shape[1]} features but the model was trained on {len(mean)}; pass rows with the "
                        "model's feature columns")
    return ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def _feature_scale(x_pool: np.ndarray, given: dict[str, Any] | None) -> dict[str, list[float]]:
    """Per-feature mean and std of the training pool (a constant feature keeps std 1), or the given ones."""
    if given is not None and given.get("feature_mean") is not None:
        return {"feature_mean": list(given["feature_mean"]), "feature_std": list(given["feature_std"])}
    mean, std = x_pool.astype(np.float64).mean(0), x_pool.astype(np.float64).std(0)
    std = np.where(std > 1e-12, std, 1.0)
    return {"feature_mean": mean.tolist(), "feature_std": std.tolist()}


def _numeric_task(name: str, raw: RawData, test_fraction: float, image_size: int | None, image_margin: int,
                  feature_scale: dict[str, Any] | None = None, image_center: str = "box") -> Task:
    """A regression task: float targets, a fixed random test split (no strata), no class names; feature
    vectors standardised (see `load_task`)."""
    if raw.has_own_test:
        x_all, y_all = np.concatenate([raw.x, raw.x_test]), np.concatenate([raw.y, raw.y_test])
        pool_index = np.arange(len(raw.x))
        test_index = len(raw.x) + np.arange(len(raw.x_test))
    else:
        x_all, y_all = raw.x, raw.y
        held_out = holdout_mask(np.zeros(len(y_all), dtype=np.int64), ["all"], test_fraction, purpose="test")
        pool_index, test_index = np.flatnonzero(~held_out), np.flatnonzero(held_out)
    if len(test_index) == 0 or len(pool_index) < 2:
        raise DataError(f"{name}: {len(y_all)} examples are too few to hold out a test split and train; add examples")
    spec = InputSpec(raw.kind, tuple(int(s) for s in raw.x.shape[1:]))
    preprocessing = {
        "image_size": image_size, "image_margin": image_margin, "image_center": image_center, "classes": None, "scale": raw.scale,
        "scale_divisor": raw.scale_divisor, "channels": spec.shape[0] if spec.kind == "image" else None,
    }
    if raw.kind == "vector":  # tabular features of different units: standardise, as the targets are in training
        preprocessing |= _feature_scale(x_all[pool_index], feature_scale)
        x_all = scale_features(x_all, preprocessing)
    return Task(
        name=name,
        x_pool=x_all[pool_index], y_pool=y_all[pool_index].astype(np.float32),
        x_test=x_all[test_index], y_test=y_all[test_index].astype(np.float32),
        class_names=[], input_spec=spec, source=raw.source,
        preprocessing=preprocessing,
        pool_index=pool_index, test_index=test_index, target="numeric",
    )


def _scale_and_frame(raw: RawData, image_size: int | None, image_margin: int, image_center: str = "box") -> None:
    """Bring inputs to float32: images to [0, 1] (then framed), vectors unscaled but finite; text stays str."""
    if raw.kind == "text":
        return
    arrays = [raw.x] + ([raw.x_test] if raw.has_own_test else [])
    if raw.kind == "vector":
        cast = [a.astype(np.float32) for a in arrays]
        for a, array_name in zip(cast, raw.x_names):
            check_finite(raw.source, a, array_name)  # float64 values beyond float32's range
        raw.x, raw.x_test = cast[0], (cast[1] if raw.has_own_test else None)
        raw.scale = raw.scale or "none (feature vectors are kept as they are)"
        return
    if raw.scale is None:
        for a, array_name in zip(arrays, raw.x_names):
            check_finite(raw.source, a, array_name)  # an IDX of float64 pixels such as 1e39
        raw.scale_divisor, raw.scale = scale_divisor(arrays, source=raw.source, names=raw.x_names)
        arrays = [to_unit(a, raw.scale_divisor) for a in arrays]
    if image_size is not None and not raw.framed:
        arrays = [frame_images(a, image_size, image_margin, image_center) for a in arrays]
    raw.x, raw.x_test = arrays[0], (arrays[1] if raw.has_own_test else None)


def _check_every_class_trains(raw: RawData, name: str, class_names: list[str], y_pool: np.ndarray,
                              y_test: np.ndarray) -> None:
    """Refuse a class that has test rows but no training rows: no model could learn it (accuracy 0 on it)."""
    trained = np.bincount(y_pool, minlength=len(class_names))
    tested = np.bincount(y_test, minlength=len(class_names))
    missing = [c for c in range(len(class_names)) if trained[c] == 0]
    if not missing:
        return
    shown = ", ".join(f"'{class_names[c]}' ({tested[c]} test rows)" for c in missing[:5])
    where = f"the test data ({raw.x_names[1]})" if raw.has_own_test else "the test split"
    raise DataError(
        f"{name}: class(es) {shown} appear in {where} but not in the training data; every class must have "
        f"training examples. Add training rows for them, drop them from the test data, or select the classes "
        f"that have both with --classes"
    )


def _check_task(name: str, class_names: list[str], pool_index: np.ndarray, test_index: np.ndarray) -> None:
    if len(class_names) < 2:
        raise DataError(
            f"{name} has {len(class_names)} class ({', '.join(class_names)}); a task needs at least two classes"
        )
    if len(test_index) == 0:
        raise DataError(
            f"{name}: the test split is empty for classes {', '.join(class_names)}; each class needs at least "
            f"2 examples so one can be held out for testing"
        )
    if len(pool_index) == 0:
        raise DataError(f"{name}: no examples are left for training and validation; add examples")


def load_inputs(
    path: str | Path,
    *,
    preprocessing: dict[str, Any] | None = None,
    label_column: str = "label",
    text_column: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Read unlabelled inputs for prediction: an image file, a flat folder of images, an .npz with x,
    a CSV of features (its label column, if any, is ignored), an IDX images file, or text: a CSV
    with a text column, a .jsonl, or a .txt with one text per non-empty line.

    Returns (x, names): images (N, C, H, W) in [0, 1] or vectors (N, D), float32, or texts (N,) as
    an object array of str, and one name per row (file name, "x[i]", "line n" or "image i"). With a
    task's `preprocessing` the inputs get the same channels, image_size, image_margin and image_center the model
    was trained with, and a text task's recorded text column is read (unless `text_column` is given).

    Example:
        >>> x, names = load_inputs("new_digits/", preprocessing=task.preprocessing)  # doctest: +SKIP
        >>> texts, names = load_inputs("questions.txt")   # names: ["line 1", "line 2", ...]  # doctest: +SKIP
    """
    # long: one dispatch over every input format predict accepts, each branch a few lines
    path = Path(path).expanduser()
    prep = preprocessing or {}
    size, margin, center = prep.get("image_size"), int(prep.get("image_margin") or 0), prep.get("image_center") or "box"
    text_task = prep.get("text_column") is not None
    text_column = text_column or prep.get("text_column") or "text"
    if not path.exists():
        raise DataError(
            f"{str(path)!r}: no such file or folder; expected an image, a folder of images, .npz, .csv, "
            f".jsonl or .txt"
        )
    suffix = path.suffix.lower()
    if suffix == ".csv" and path.is_file() and not text_task and text_column != "text":
        check_text_column(str(path), text_column)
    if path.is_file() and (suffix in (".jsonl", ".txt") or (suffix == ".csv" and (
        text_task or is_text_source(str(path), text_column)
    ))):
        return read_text_inputs(path, text_column=text_column)
    if path.is_dir() or is_image_file(path):
        files = image_files(path) if path.is_dir() else [path]
        if not files:
            raise DataError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)}); sub-folders are not searched")
        x = read_images(files, size, margin, center)
        if prep.get("channels") is not None:
            x = convert_channels(x, int(prep["channels"]))
        return x, [f.name for f in files]
    if suffix == ".csv":
        x, _, lines = read_csv(path, label_column, required=False)
        return x, [f"line {n}" for n in lines]
    if suffix == ".npz":
        arrays = load_npz_arrays(path)
        if "x" not in arrays:
            present = ", ".join(f"'{n}'" for n in arrays) or "none"
            raise DataError(f"{path}: missing array 'x' holding the inputs; found {present}")
        x, array_name = arrays["x"], "x"
        names = [f"x[{i}]" for i in range(len(x))]
    elif is_idx_file(path):
        x, array_name = read_idx_images(path), path.name
        names = [f"image {i}" for i in range(len(x))]
    else:
        raise DataError(f"{path}: unsupported file type '{path.suffix or '(none)'}'; {expected_sources()}")
    check_not_empty(str(path), x, array_name)
    kind, x = input_kind(x, str(path), array_name)
    check_finite(str(path), x, array_name)
    if kind == "vector":
        x = x.astype(np.float32)
        check_finite(str(path), x, array_name)
        return x, names
    divisor, _ = scale_divisor([x], source=str(path), names=[array_name], known_divisor=prep.get("scale_divisor"))
    return preprocess_inputs(to_unit(x, divisor), prep), names
