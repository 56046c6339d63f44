"""The frozen-feature cache: a frozen, deterministic backbone prefix runs once per dataset, not once per step.

When a strategy freezes the first k blocks (in eval mode, so dropout is off and BatchNorm uses its
running statistics, and transferlab applies no augmentation), their output for an example never
changes during training. Computing it once for the task's pool and test split, and training the rest
of the network on those features, gives the same result as the uncached path at a fraction of the
cost. One cache can be shared by every run in a process whose backbone prefix has the same weights
(a comparison's seeds and strategies).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.imagefiles import LazyImages, decoded_rows
from ..models.backbone import Backbone
from .evaluate import EVAL_BATCH, TEXT_BATCH, eval_batch  # noqa: F401  (TEXT_BATCH: imported from here elsewhere)


def cacheable_prefix(backbone: Backbone, frozen: list[str]) -> int:
    """How many leading blocks are frozen (0: nothing to cache), cut where every feature block's output is still given."""
    k = 0
    for name in backbone.block_names:
        if name not in frozen:
            break
        k += 1
    return backbone.cacheable_cut(k)


def _entry_source(source: str, backbone: Backbone, stop: int) -> str:
    """The whole backbone's outputs depend on which blocks' pooled outputs are the features: they are their own entry."""
    if backbone.feature_blocks and stop >= len(backbone.blocks):
        grid = f"@grid={backbone.feature_grid}" if backbone.feature_grid > 1 else ""
        return f"{source}#features={','.join(backbone.feature_blocks)}{grid}"
    return source


def prefix_features(backbone: Backbone, stop: int, x: np.ndarray | torch.Tensor, advance=None) -> torch.Tensor:
    """Outputs of the first `stop` blocks, in eval mode, in large batches: (N, ...) float32.

    Inputs with a length (tokenized text) are batched shortest first, so each batch carries little
    padding; the rows come back in their original order. `advance(n)` reports progress per batch.
    """
    if isinstance(x, LazyImages):  # image files decoded a batch at a time: only the features are kept
        return _lazy_prefix_features(backbone, stop, x, advance)
    xt = backbone.prepare_inputs(x) if isinstance(x, np.ndarray) else x
    lengths = getattr(backbone, "input_lengths", None)
    order = torch.argsort(lengths(xt), stable=True) if lengths is not None and len(xt) else None
    batch = TEXT_BATCH if order is not None else eval_batch(backbone)
    xs = xt[order] if order is not None else xt
    was_training = backbone.training
    backbone.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(xs), batch):
            outs.append(backbone.features_until(xs[i : i + batch], stop))
            if advance is not None:
                advance(len(outs[-1]))
        out = torch.cat(outs) if outs else backbone.features_until(xs, stop)
    backbone.train(was_training)
    if order is not None:
        out = out[torch.argsort(order)]
    return out.clone()  # a normal tensor (inference tensors cannot be saved for backward)


def _lazy_prefix_features(backbone: Backbone, stop: int, x: LazyImages, advance=None) -> torch.Tensor:
    was_training = backbone.training
    backbone.eval()
    outs = []
    with torch.inference_mode():
        batch = eval_batch(backbone)
        for i in range(0, max(len(x), 1), batch):
            outs.append(backbone.features_until(backbone.prepare_inputs(decoded_rows(x, i, i + batch)), stop))
            if advance is not None and len(x):
                advance(len(outs[-1]))
    backbone.train(was_training)
    return torch.cat(outs).clone()


def _continue_features(backbone: Backbone, start: int, stop: int, h: torch.Tensor) -> torch.Tensor:
    """Blocks start..stop-1 in eval mode over cached outputs of the first `start` blocks (the same weights)."""
    blocks = list(backbone.blocks.values())[start:stop]
    whole = stop >= len(backbone.blocks)  # the features (pooled outputs of the feature blocks, if chosen)
    was_training = backbone.training
    backbone.eval()
    outs = []
    with torch.inference_mode():
        batch = eval_batch(backbone)
        for i in range(0, len(h), batch):
            out = h[i : i + batch]
            if whole:
                out = backbone.features_from(out, start)
            else:
                for block in blocks:
                    out = block(out)
            outs.append(out)
    backbone.train(was_training)
    return torch.cat(outs).clone()


class FeatureCache:
    """Prefix outputs keyed by (source, number of blocks, array name), computed on first use.

    `source` names the weights of the prefix (e.g. the pretrained model's sha256): runs share an
    entry only when their frozen prefix has the same weights. A deeper prefix of the same source is
    computed from a shallower one already cached (partial's frozen stages, then a linear probe's
    whole backbone): only the blocks in between run.

    The entries kept stay within `max_bytes` (default: the `feature_cache_bytes` limit, 2 GiB, raised
    or lowered with TRANSFERLAB_MAX_FEATURE_CACHE_BYTES). Features that would go beyond it are
    computed and returned but not kept: the runs that need them compute them again (the same
    values, more time), and `declined` counts how often that happened.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        from ..limits import limit

        self._store: dict[tuple[str, int, str], torch.Tensor] = {}
        self.max_bytes = limit("feature_cache_bytes") if max_bytes is None else int(max_bytes)
        self.declined = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept entries."""
        return sum(t.numel() * t.element_size() for t in self._store.values())

    def features(self, source: str, backbone: Backbone, stop: int, name: str, x: np.ndarray, advance=None) -> torch.Tensor:
        key = (_entry_source(source, backbone, stop), stop, name)
        if key in self._store:
            if advance is not None:
                advance(len(x))
            return self._store[key]
        deepest = backbone.cacheable_cut(stop - 1) if stop >= len(backbone.blocks) else stop - 1
        below = max((k for (s, k, n) in self._store if s == source and n == name and 0 < k <= deepest), default=0)
        if below:  # a shallower prefix of the same weights is cached: run only the rest
            out = _continue_features(backbone, below, stop, self._store[(source, below, name)])
            if advance is not None:
                advance(len(x))
        else:
            out = prefix_features(backbone, stop, x, advance)
        if self.nbytes + out.numel() * out.element_size() <= self.max_bytes:
            self._store[key] = out
        else:
            self.declined += 1
        return out

    def has(self, source: str, stop: int, name: str, backbone: Backbone) -> bool:
        return (_entry_source(source, backbone, stop), stop, name) in self._store

    def __len__(self) -> int:
        return len(self._store)
