"""Progress for every step that can take more than a few seconds: its home is transferlab/progress.py.

It lives below every layer so that a strategy (setfit's pair tuning) can report progress without
importing the engine; this module keeps the engine's import path (the API, export and predict use it).
"""

from __future__ import annotations

from ..progress import (  # noqa: F401  (re-exported)
    WIDTH,
    Progress,
    ProgressEvent,
    ProgressHooks,
    _bar,
    batch_progress,
    progress_steps,
    resolve_progress,
    short,
    training_progress,
)
