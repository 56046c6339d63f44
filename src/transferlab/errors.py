"""Exceptions a user can cause. Each message names the value received, what is allowed, and the fix."""

from __future__ import annotations


class TransferlabError(Exception):
    """Base class for every error transferlab raises on bad user input or a bad file."""


class DataError(TransferlabError, ValueError):
    """A dataset could not be read, or does not fit what was asked of it."""


class ConfigError(TransferlabError, ValueError):
    """An option or combination of options is not allowed."""


class ArtifactError(TransferlabError):
    """A pretrained/fine-tuned model folder is missing, incomplete, or fails its checksum."""


class ShapeError(TransferlabError, ValueError):
    """Input data does not fit the shape a backbone expects."""


class TrainingDiverged(TransferlabError):
    """The loss became NaN or infinite; training stopped before the bad step changed any weights."""
