"""Seeds and threads: what makes a run repeatable (same seed and thread count → identical weights)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ..errors import ConfigError

# Measured on the 2-core CI machine (benchmarks/threads.py): one intra-op thread is faster than two
# for the small models transferlab trains here, idle and much more so under load.
DEFAULT_THREADS = 1


def resolve_threads(threads: int | None) -> int:
    """The thread count a run uses: the argument, else $TRANSFERLAB_THREADS, else DEFAULT_THREADS."""
    if threads is None:
        env = os.environ.get("TRANSFERLAB_THREADS")
        if env is None:
            return DEFAULT_THREADS
        try:
            threads = int(env)
        except ValueError:
            raise ConfigError(f"TRANSFERLAB_THREADS must be a whole number ≥ 1; got {env!r}") from None
    if threads < 1:
        raise ConfigError(f"--threads must be a whole number ≥ 1; got {threads}")
    return threads


def set_threads(threads: int) -> None:
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a dedicated generator for the data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo; elsewhere what `platform` knows)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_environment(threads: int) -> dict[str, str | int]:
    """What a run's numbers depend on besides its seed and config: thread count, library versions, machine.

    Same seed, same thread count and the same environment give bit-identical weights and metrics; a
    different thread count may change the float summation order (see README, *Reproducibility*).
    """
    import platform

    return {"threads": int(threads), "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu": cpu_name()}
