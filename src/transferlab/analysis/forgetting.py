"""Forgetting: how much of the source task a backbone still solves after fine-tuning on the target.

Source accuracy is measured on the source task's fixed test split with the source head saved at
pretraining (source_head.safetensors): once on the pretrained backbone (before) and once on the
fine-tuned backbone (after). The drop is what fine-tuning cost the source task — catastrophic
forgetting (McCloskey & Cohen 1989; Kirkpatrick et al. 2017).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..artifacts import LoadedModel
from ..data import check_input_fits
from ..data.task import Task
from ..errors import ArtifactError, ConfigError
from ..models.backbone import Backbone
from .representations import features
from .target import TargetSpec


@dataclass
class Forgetting:
    """Source test accuracy of the pretrained backbone (before) and the fine-tuned one (after)."""

    source_data: str
    before: float
    after: float
    n: int

    @property
    def drop(self) -> float:
        return self.before - self.after

    def to_json(self) -> dict[str, Any]:
        return {"source_data": self.source_data, "before": self.before, "after": self.after, "drop": self.drop,
                "n": self.n}


def source_spec(pretrained: LoadedModel, source_data: str | None = None) -> TargetSpec:
    """The source task as the pretrained model read it: its data (or `source_data`) with its preprocessing."""
    task = pretrained.config.get("source_task") or {}
    prep = pretrained.config.get("preprocessing") or {}
    data = source_data or task.get("path") or task.get("data")
    if not data or data == "n/a":
        raise ConfigError(f"{pretrained.path} records no source dataset; pass --source-data")
    return TargetSpec.recorded(str(data), prep, test_data=None if source_data else task.get("test_data"))


def _require_source_head(pretrained: LoadedModel) -> torch.nn.Module:
    if pretrained.source_head is not None:
        return pretrained.source_head
    if pretrained.config.get("origin"):
        raise ArtifactError(
            f"{pretrained.path} is a packaged encoder without a classification head of its own, so its source accuracy "
            "cannot be measured; forgetting needs a model pretrained here (transferlab pretrain)"
        )
    raise ArtifactError(
        f"{pretrained.path} has no source head (source_head.safetensors): it was saved before transferlab kept the "
        "pretraining output layer, so source accuracy cannot be measured. Re-pretrain it (transferlab pretrain ... "
        "--out DIR) and fine-tune from the new folder"
    )


def source_accuracy(backbone: Backbone, head: torch.nn.Module, task: Task) -> float:
    """Accuracy of `head` on `backbone`'s features of the source task's test split."""
    feats = torch.from_numpy(features(backbone, task.x_test))
    with torch.inference_mode():
        predicted = head(feats).argmax(1).numpy()
    return float((predicted == task.y_test).mean())


def source_task(pretrained: LoadedModel, source_data: str | None = None) -> tuple[torch.nn.Module, Task]:
    """The pretrained model's source head and its source task, checked to fit each other."""
    head = _require_source_head(pretrained)
    spec = source_spec(pretrained, source_data)
    task = spec.load()
    check_input_fits(task, pretrained.input_spec, model_name=str(pretrained.path), data_name=spec.data)
    expected = (pretrained.config.get("source_task") or {}).get("label_names") or pretrained.label_names
    if list(task.class_names) != list(expected):
        raise ConfigError(
            f"--source-data {spec.data} has classes {task.class_names} but the source head of {pretrained.path} predicts "
            f"{expected}; pass the source task the model was pretrained on"
        )
    return head, task


def forgetting(pretrained: LoadedModel, finetuned: Backbone, source_data: str | None = None) -> Forgetting:
    """Source test accuracy before and after fine-tuning, through the pretraining head.

    Example:
        >>> f = forgetting(load("models/src"), load("models/tgt").backbone)  # doctest: +SKIP
        >>> f.before, f.after, f.drop  # doctest: +SKIP
    """
    head, task = source_task(pretrained, source_data)
    return Forgetting(source_data=source_spec(pretrained, source_data).data,
                      before=source_accuracy(pretrained.backbone, head, task),
                      after=source_accuracy(finetuned, head, task), n=int(len(task.y_test)))
