"""An estimate of training FLOPs: forward passes of the whole model + backward passes of its trainable part."""

from __future__ import annotations

import torch
from torch import nn


def flops_per_example(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(forward FLOPs of the whole model, forward FLOPs of the layers that train) for one example.

    Counted by torch's FlopCounterMode (matmuls and convolutions; elementwise ops are not counted).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from ..engine.device import module_device

    example = example.to(module_device(model))  # a run may have trained the model on a GPU
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(example)
    model.train(was_training)
    counts = counter.get_flop_counts()
    prefix = type(model).__name__
    trainable = 0
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if own and any(p.requires_grad for p in own):
            trainable += sum(counts.get(f"{prefix}.{name}", {}).values())
    return int(counter.get_total_flops()), int(trainable)


def training_flops(forward_total: int, forward_trainable: int, samples_seen: int) -> float:
    """Every example seen goes forward once through everything and backward (≈2× forward) through what trains."""
    return float(samples_seen) * (forward_total + 2 * forward_trainable)
