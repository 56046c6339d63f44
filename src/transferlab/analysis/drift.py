"""Weight drift per block: how far fine-tuning moved each block from its pretrained weights.

    drift(block) = ‖w − w₀‖ / ‖w₀‖,

with w the block's parameters after fine-tuning and w₀ before, each concatenated into one vector
(BatchNorm running statistics are buffers, not weights, and are left out). A frozen block has drift
exactly 0; a block re-initialised and retrained (scratch) has drift around √2.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..models.backbone import Backbone


def weight_drift(pretrained: Backbone, finetuned: Backbone) -> dict[str, float]:
    """{block name: ‖w − w₀‖ / ‖w₀‖}, input side first (NaN for a block with no weights, or all-zero ones).

    Example:
        >>> weight_drift(load("models/src").backbone, load("models/tgt").backbone)  # doctest: +SKIP
        {'conv1': 0.0, 'conv2': 0.0, 'fc': 0.41}
    """
    if pretrained.block_names != finetuned.block_names:
        raise ConfigError(
            f"weight drift compares the same architecture: the pretrained blocks are {pretrained.block_names} but "
            f"the fine-tuned model has {finetuned.block_names}; pass the pretrained model it was fine-tuned from"
        )
    drift = {}
    for name in pretrained.block_names:
        before = dict(pretrained.blocks[name].named_parameters())
        after = dict(finetuned.blocks[name].named_parameters())
        if before.keys() != after.keys() or any(before[k].shape != after[k].shape for k in before):
            raise ConfigError(
                f"block {name!r} has different parameters in the two models ({sorted(before)} vs {sorted(after)}); "
                "pass the pretrained model this one was fine-tuned from"
            )
        with torch.no_grad():
            diff = sum(float(((after[k].double() - before[k].double()) ** 2).sum()) for k in before)
            norm = sum(float((before[k].double() ** 2).sum()) for k in before)
        drift[name] = math.sqrt(diff) / math.sqrt(norm) if norm > 0 else float("nan")
    return drift
