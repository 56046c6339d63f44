"""The target task an analysis reads, and the pretrained models it reads it with."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..artifacts import LoadedModel, load_model_folder, resolve_model
from ..data import DataOptions, check_input_fits, split_task
from ..data.task import Task, TaskSplit


@dataclass(frozen=True)
class TargetSpec:
    """A target dataset and how to read it (the same options as `finetune` and `compare`)."""

    data: str
    classes: str | list | None = None
    image_size: int | None = None
    image_margin: int = 0
    label_column: str = "label"
    text_column: str = "text"
    test_data: str | None = None
    image_center: str = "box"

    @classmethod
    def of(cls, data: str, data_options: DataOptions | None, **keywords: Any) -> "TargetSpec":
        """The target `data` read with `data_options` and/or the same fields as keywords (DataOptions.merge).

        Class labels only: an analysis refuses a numeric target.
        """
        from ..errors import ConfigError

        options = DataOptions.merge(data_options, **keywords)
        if options.target != "class":
            raise ConfigError(f"the analyses score class labels; got target={options.target!r}. Read the data with "
                              "target='class' (a numeric target has no classes to score)")
        return cls(data, options.classes, options.image_size, options.image_margin, options.label_column,
                   options.text_column, options.test_data, options.image_center)

    @classmethod
    def recorded(cls, data: str, preprocessing: dict[str, Any], **given: Any) -> "TargetSpec":
        """The target `data` read as a model folder recorded it (its `preprocessing`), with `given` overriding.

        `given` are DataOptions fields (None: not given), e.g. a `label_column` or `test_data` passed by the
        caller. Class labels only, as `of`.

        Example:
            >>> TargetSpec.recorded("digits", {"image_size": 28, "image_margin": None, "scale": 16.0}, test_data=None)
            TargetSpec(data='digits', classes=None, image_size=28, image_margin=0, label_column='label', text_column='text', test_data=None, image_center='box')
        """
        return cls.of(data, DataOptions.from_preprocessing(preprocessing, **given))

    @property
    def options(self) -> DataOptions:
        """How the dataset is read: the DataOptions every command shares (class labels: analyses score classes)."""
        return DataOptions(classes=self.classes, image_size=self.image_size, image_margin=self.image_margin,
                           label_column=self.label_column, text_column=self.text_column, test_data=self.test_data,
                           image_center=self.image_center)

    def load(self) -> Task:
        """The task with class labels (analyses score classes; a numeric target is never read here)."""
        return self.options.load(self.data)

    def labelled(self, shots: int | None, seed: int) -> tuple[Task, TaskSplit]:
        """The task and its training split: K labelled examples per class (all with shots=None); never the test split."""
        task = self.load()
        return task, split_task(task, shots=shots, seed=seed)

    def identity(self) -> dict[str, Any]:
        return asdict(self)


def load_model(ref: str | Path, task: Task, *, module: nn.Sequential | None = None) -> LoadedModel:
    """A model folder (path or store name) whose input fits the task, checksums verified."""
    loaded = load_model_folder(resolve_model(ref), module=module)
    check_input_fits(task, loaded.input_spec, model_name=str(ref))
    return loaded


def source_head(loaded: LoadedModel) -> tuple[nn.Module | None, str | None]:
    """The head that predicts a source task from this model's features, or None and why there is none.

    A pretrained folder keeps its pretraining output layer (source_head.safetensors); a fine-tuned
    folder's own head predicts its target task, which is the source task for the next transfer.
    """
    name = loaded.path.name
    if loaded.model is not None:
        head, target = loaded.model.head, loaded.config.get("target", "class")
    else:
        head, target = loaded.source_head, (loaded.config.get("source_task") or {}).get("target", "class")
        if head is None:
            if loaded.config.get("origin"):
                return None, (f"{name} is an encoder brought in from outside ({loaded.config['origin']}) with no "
                              "classification head of its own, so LEEP does not apply")
            return None, (f"{name} has no source head (the folder was saved before transferlab kept the pretraining "
                          f"output layer); re-pretrain it to get LEEP and forgetting")
    if target == "numeric":
        return None, f"{name} was trained on a numeric target; LEEP needs source classes"
    return head, None
