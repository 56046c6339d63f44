"""A deeper frozen prefix is computed from a shallower one already cached: only the blocks in between run."""

from __future__ import annotations

import torch

from transferlab.engine import FeatureCache
from transferlab.engine.feature_cache import prefix_features
from transferlab.models import create_backbone


def test_a_deeper_prefix_runs_only_the_blocks_below_it_and_equals_the_direct_pass(tiny_task):
    torch.manual_seed(0)
    backbone = create_backbone("cnn", tiny_task.input_spec, channels=[4, 8])
    calls = {name: 0 for name in backbone.block_names}
    for name in backbone.block_names:
        backbone.blocks[name].register_forward_hook(lambda m, i, o, name=name: calls.__setitem__(name, calls[name] + 1))
    cache = FeatureCache()
    shallow = cache.features("w", backbone, 1, "pool", tiny_task.x_pool)
    first = dict(calls)
    seen = []
    deep = cache.features("w", backbone, len(backbone.block_names), "pool", tiny_task.x_pool, advance=seen.append)
    assert calls[backbone.block_names[0]] == first[backbone.block_names[0]]  # the first block did not run again
    assert all(calls[n] > first[n] for n in backbone.block_names[1:])
    assert seen == [len(tiny_task.x_pool)]  # progress still counts every row
    direct = prefix_features(backbone, len(backbone.block_names), tiny_task.x_pool)
    torch.testing.assert_close(deep, direct, rtol=1e-5, atol=1e-6)
    assert cache.features("w", backbone, 1, "pool", tiny_task.x_pool) is shallow
    # another source's shallower entry is never used
    other = cache.features("v", backbone, 2, "pool", tiny_task.x_pool)
    torch.testing.assert_close(other, prefix_features(backbone, 2, tiny_task.x_pool), rtol=1e-5, atol=1e-6)
