"""Devices and precision: where a run's tensors live (`--device`) and whether CUDA steps run in bf16 (`--precision`).

Training data is preloaded once: on CUDA it is copied to the GPU whole, from pinned (page-locked)
host memory so the copy is asynchronous, and batches are then gathered on the GPU by index.
Evaluation moves each batch to the model's device and returns outputs on the CPU.
"""

from __future__ import annotations

import contextlib
import os
from typing import ContextManager

import torch

from ..errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str) -> torch.device:
    """`auto` → cuda if a GPU is visible, else mps (Apple silicon), else cpu. In a distributed run
    each process takes the GPU of its LOCAL_RANK.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name not in DEVICES:
        raise ConfigError(f"--device {name!r} is not one of {list(DEVICES)}; use --device auto to pick the best available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device cuda: no CUDA GPU is visible to torch {torch.__version__} "
                f"({'a CPU-only build' if torch.version.cuda is None else 'no GPU or driver found'}); "
                "use --device cpu, or --device auto to use a GPU only when there is one"
            )
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    if name == "mps" and not _mps_available():
        raise ConfigError("--device mps: Apple's Metal backend is not available on this machine; use --device cpu or auto")
    return torch.device(name)


def check_precision(precision: str, device: str) -> None:
    """bf16 autocast is offered on CUDA only (CPU bf16 matmuls are slower than fp32 on most CPUs)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "bf16":
        resolved = resolve_device(device).type
        if resolved != "cuda":
            shown = f"{device!r} (resolved to {resolved!r} here)" if device == "auto" else repr(device)
            raise ConfigError(f"--precision bf16 runs on CUDA only; the device is {shown} — "
                              "use --precision fp32, or --device cuda on a machine with a GPU")


def autocast(device: torch.device, precision: str) -> ContextManager:
    """The forward pass's precision: bf16 autocast on CUDA when asked, else plain fp32."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a preloaded tensor to `device`: from pinned memory, asynchronously, on CUDA; unchanged on its own device."""
    if x.device == device:
        return x
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (cpu for a module without parameters)."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))
