"""TensorBoard tracking: event files written with torch.utils.tensorboard.SummaryWriter under a log folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..artifacts.files import write_text_atomic
from .base import Tracker, epoch_metrics, flat_params

DEFAULT_LOGDIR = "runs"  # TensorBoard's own default: `tensorboard --logdir runs`


def _tag(key: str) -> str:
    """`train_loss` → `train/loss`, `val_accuracy` → `val/accuracy`: TensorBoard groups by the prefix."""
    head, _, rest = key.partition("_")
    return f"{head}/{rest}" if rest and head in ("train", "val", "test", "source") else key


class TensorBoardTracker(Tracker):
    """One run folder `<logdir>/<name>`: scalars per epoch, params as text and params.json, the model folder in model/."""

    def __init__(self, logdir: str | None, *, name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        root = Path(logdir or DEFAULT_LOGDIR)
        folder, n = root / name, 1
        while folder.exists():  # every run its own folder: curves of two runs never mix
            n += 1
            folder = root / f"{name}-{n}"
        self.folder = folder
        self.location = str(folder)
        self.run_id = folder.name
        self._writer = SummaryWriter(log_dir=str(folder))
        flat = flat_params(params) | {f"tag.{k}": v for k, v in tags.items()}
        table = "| param | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in flat.items())
        self._writer.add_text("params", table, 0)
        write_text_atomic(folder / "params.json", json.dumps(flat, indent=2) + "\n")
        self._last_step = 0

    def log_epoch(self, record: dict[str, float]) -> None:
        step = int(record["epoch"])
        for key, value in epoch_metrics(record).items():
            self._writer.add_scalar(_tag(key), value, step)
        self._last_step = step

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(_tag(key), value, self._last_step if step is None else step)

    def log_model_folder(self, folder: Path) -> None:
        shutil.copytree(folder, self.folder / "model", dirs_exist_ok=True)

    def close(self, status: str) -> None:
        self._writer.add_text("status", status, self._last_step)
        self._writer.close()
