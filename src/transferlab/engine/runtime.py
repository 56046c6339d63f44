"""Seeds and threads: what makes a run repeatable (same seed and thread count → identical weights)."""

from __future__ import annotations

import os
import random
import sys

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
    keep_freed_memory()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


# glibc's malloc settings (mallopt): blocks up to MMAP_THRESHOLD come from the heap, and freed memory at its top
# is handed back to the system only beyond TRIM_THRESHOLD. With glibc's defaults a training step of the demo's
# cnn gives back and faults in again ~500 pages of activations (~2 MB) every step: ~1.5–2 ms of a 10–12 ms step
# in the kernel (docs/compare_speed.md).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for this setting on 64-bit systems
TRIM_THRESHOLD = 256 << 20
ALLOCATOR_SETTING = "TRANSFERLAB_ALLOCATOR"  # "system": leave the C library's settings as they are
_allocator_kept: bool | None = None  # None: not decided yet in this process


def keep_freed_memory() -> bool:
    """Keep freed tensor memory in this process for the next step, instead of returning it to the system.

    On Linux with glibc, sets malloc's mmap threshold to 32 MiB and its trim threshold to 256 MiB (once per
    process; every training run calls it): the activations a step frees are reused by the next step without
    page faults. Values are unchanged (only where memory comes from); the process's resident memory stays
    near its peak after a large step instead of shrinking. Not done when `TRANSFERLAB_ALLOCATOR=system`, when
    the environment already sets malloc (`MALLOC_*`, `GLIBC_TUNABLES` with `glibc.malloc`), or without glibc.
    Returns whether the settings are in force.
    """
    global _allocator_kept
    if _allocator_kept is None:
        _allocator_kept = _set_malloc_thresholds()
    return _allocator_kept


def _set_malloc_thresholds() -> bool:
    setting = os.environ.get(ALLOCATOR_SETTING, "").strip().lower()
    if setting not in ("", "keep", "system"):
        raise ConfigError(f"{ALLOCATOR_SETTING}={setting!r} is not one of 'keep' (the default) or 'system' "
                          "(the C library's own malloc settings); unset it or pick one of those")
    if setting == "system" or not sys.platform.startswith("linux"):
        return False
    if any(k.startswith("MALLOC_") for k in os.environ) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False  # the user's own malloc settings win
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: other C libraries' mallopt (if any) means other things
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


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
