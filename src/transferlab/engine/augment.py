"""Random image transforms applied to each training batch (`--augment`): their home is data/augment.py.

They live in the data layer so that a strategy (self-training's strong views) can use them without
importing the engine; this module keeps the engine's import path.
"""

from __future__ import annotations

from ..data.augment import (  # noqa: F401  (re-exported)
    AUGMENTS,
    CROP_AREA,
    CROP_ASPECT,
    JITTER,
    MAX_DEGREES,
    MAX_SHIFT,
    PHOTO_AUGMENTS,
    SCALE_RANGE,
    augment_batch,
    check_augment,
    photo_augment,
)
