"""MLflow tracking through mlflow-skinny's client: a local SQLite store by default, any tracking URI otherwise."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import Tracker, epoch_metrics, flat_params

EXPERIMENT = "transferlab"
DEFAULT_FOLDER = "mlruns"  # ./mlruns/mlflow.db and ./mlruns/artifacts
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value


def default_tracking_uri() -> str:
    """`sqlite:///<cwd>/mlruns/mlflow.db`: a local store that `mlflow ui --backend-store-uri` opens."""
    return f"sqlite:///{(Path.cwd() / DEFAULT_FOLDER / 'mlflow.db').as_posix()}"


def _artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite store live beside the database, in `artifacts/` (servers choose their own)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    return (db.resolve().parent / "artifacts").as_uri()


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow and alembic log every table migration of a new store at INFO; keep the terminal clean."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class MlflowTracker(Tracker):
    """One MLflow run in experiment `transferlab`: params, per-epoch metrics, final metrics, the model folder."""

    def __init__(self, uri: str | None, *, name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # an offline workbench sends nothing anywhere
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.location = uri or default_tracking_uri()
        with _quiet():
            self._client = MlflowClient(tracking_uri=self.location)
            experiment = self._client.get_experiment_by_name(EXPERIMENT)
            experiment_id = (experiment.experiment_id if experiment is not None else
                             self._client.create_experiment(EXPERIMENT, artifact_location=_artifact_location(self.location)))
            run = self._client.create_run(experiment_id, run_name=name, tags={"transferlab": "1", **tags})
        self.run_id = run.info.run_id
        flat = [Param(k, v[:MAX_PARAM_CHARS]) for k, v in flat_params(params).items()]
        for i in range(0, len(flat), 100):  # MLflow takes at most 100 params per batch
            self._client.log_batch(self.run_id, params=flat[i : i + 100])

    def _log(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def log_epoch(self, record: dict[str, float]) -> None:
        self._log(epoch_metrics(record), int(record["epoch"]))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._log(metrics, step or 0)

    def log_model_folder(self, folder: Path) -> None:
        self._client.log_artifacts(self.run_id, str(folder), artifact_path="model")

    def close(self, status: str) -> None:
        self._client.set_terminated(self.run_id, status=status)
