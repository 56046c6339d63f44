"""Imported once by the fork server that `--jobs N` worker processes are forked from (compare/grid.py GridWorkers).

What every cell needs — torch, the engine, the strategies, data and model loading — is imported here once, and
each worker process is a fork of this one: N workers pay one start (≈ 4 s of CPU) instead of N. Importing it
runs no torch computation (no OpenMP threads exist when the server forks) and draws no random numbers.
"""

from __future__ import annotations

import torch

from .. import artifacts, data, engine, strategies  # noqa: F401
from ..engine import run  # noqa: F401
from . import cells  # noqa: F401

# torch imports torch._dynamo at the first optimiser a process makes (a second or more of CPU): here, once.
torch.optim.Adam([torch.zeros(1, requires_grad=True)])
