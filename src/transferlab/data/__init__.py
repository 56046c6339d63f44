"""Tasks and datasets: built-in and user datasets, fixed test splits, K-shot training splits.

Works on numpy arrays only (no torch), and imports Pillow, scikit-learn and mlxtend only when a
function needs them, so importing this package is cheap.

Example:
    >>> from transferlab.data import load_task, split_task
    >>> task = load_task("digits", classes="0-4", image_size=28, image_margin=4)
    >>> split = split_task(task, shots=10, seed=0)
"""

from transferlab.data.builtin import DATASETS, BuiltinDataset, list_datasets, register_dataset
from transferlab.data.classes import parse_classes
from transferlab.data.images import frame_image, frame_images, preprocess_inputs
from transferlab.data.loading import load_inputs, load_task
from transferlab.data.options import DataOptions
from transferlab.data.rawdata import RawData
from transferlab.data.shapes import check_input_fits
from transferlab.data.splits import parse_shots, split_task
from transferlab.data.task import InputSpec, Task, TaskSplit

__all__ = [
    "DATASETS",
    "DataOptions",
    "BuiltinDataset",
    "InputSpec",
    "RawData",
    "Task",
    "TaskSplit",
    "check_input_fits",
    "frame_image",
    "frame_images",
    "list_datasets",
    "load_inputs",
    "load_task",
    "parse_classes",
    "parse_shots",
    "preprocess_inputs",
    "register_dataset",
    "split_task",
]
