"""Representations: the output of every block of a backbone for a set of inputs, as (N, d) matrices.

Every analysis here (transferability scores, layer-wise similarity, domain gap) reads a block's output
as one vector per example:
- vectors (B, D) are used as they are;
- feature maps (B, C, H, W) are flattened, after average-pooling to the largest g×g grid with
  C·g² ≤ `max_dim` when the flat map would be wider (LogME, H-score and CKA cost grows with width);
- token states of text encoders (B, L, H + mask) are averaged over the real (unmasked) tokens;
- anything else is flattened.
The last block's output is the backbone's `features(x)`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..engine.evaluate import eval_batch
from ..engine.feature_cache import TEXT_BATCH
from ..errors import ConfigError
from ..models.backbone import Backbone

MAX_DIM = 1024


def pool_output(h: torch.Tensor, *, text: bool, max_dim: int = MAX_DIM) -> torch.Tensor:
    """One block's output (B, …) as (B, d) float32, by the rules in the module docstring."""
    if text and h.dim() == 3:
        mask = h[..., -1:]  # (B, L, 1): the attention mask rides along as a last channel
        return ((h[..., :-1] * mask).sum(1) / mask.sum(1).clamp_min(1.0)).float()  # (B, H)
    if h.dim() == 4 and h[0].numel() > max_dim:
        grid = max(1, math.isqrt(max_dim // h.shape[1]))
        h = nn.functional.adaptive_avg_pool2d(h, (min(grid, h.shape[2]), min(grid, h.shape[3])))
    return h.reshape(len(h), -1).float()


def block_outputs(
    backbone: Backbone, x: np.ndarray | torch.Tensor, *, max_dim: int = MAX_DIM, blocks: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """{block name: (N, d) float32} for the named `blocks` (all by default), in eval mode.

    Blocks run in order up to the last one asked for; only the asked-for outputs are kept.

    Text inputs are batched shortest first (little padding, as in the feature cache); rows come back
    in their original order.

    Example:
        >>> outs = block_outputs(create_backbone("cnn", InputSpec("image", (1, 28, 28))), x)  # doctest: +SKIP
        >>> {name: o.shape for name, o in outs.items()}  # doctest: +SKIP
        {'conv1': (N, 1024), 'conv2': (N, 800), 'fc': (N, 128)}
    """
    xt = x if isinstance(x, torch.Tensor) else backbone.prepare_inputs(x)  # arrays, and image files read lazily
    lengths = getattr(backbone, "input_lengths", None)
    text = lengths is not None
    order = torch.argsort(lengths(xt), stable=True) if text and len(xt) else None
    xs = xt[order] if order is not None else xt
    batch = TEXT_BATCH if text else eval_batch(backbone)
    wanted = list(backbone.block_names if blocks is None else blocks)
    unknown = [b for b in wanted if b not in backbone.block_names]
    if unknown:
        raise ConfigError(f"no block(s) {unknown} in this backbone; its blocks are {backbone.block_names}")
    names = backbone.block_names[: max(backbone.block_names.index(b) for b in wanted) + 1] if wanted else []
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in wanted}
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(xs), batch):
                h = xs[i : i + batch]
                if text:  # drop padding beyond this batch's longest text
                    h = h[..., : int(lengths(h).max())]
                for name in names:
                    h = backbone.blocks[name](h)
                    if name in parts:
                        parts[name].append(pool_output(h, text=text, max_dim=max_dim))
    finally:
        backbone.train(was_training)
    out = {}
    for name in wanted:
        rows = torch.cat(parts[name]) if parts[name] else torch.zeros(0, 0)
        if order is not None:
            rows = rows[torch.argsort(order)]
        out[name] = rows.numpy()
    return out


def features(backbone: Backbone, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """The backbone's output `features(x)` (N, feature_dim) as float32 numpy, in eval mode."""
    last = backbone.block_names[-1]
    return block_outputs(backbone, x, blocks=[last])[last]


def source_probabilities(head: nn.Module, feats: np.ndarray) -> np.ndarray:
    """Softmax of the source head over backbone features (N, feature_dim) -> (N, source classes)."""
    with torch.inference_mode():
        logits = head(torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32)))
    return logits.softmax(1).double().numpy()
