"""Folders of image files too big to preload are decoded per batch (data/imagefiles.py LazyImages).

What a user checks: the same folder gives the same model whether it was preloaded or read lazily; a run
over a lazy folder is deterministic and resumes exactly; a frozen prefix keeps only cached features; a
folder whose decoded pixels are above the memory limit still trains.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab.data import imagefiles, load_task, split_task
from transferlab.data.imagefiles import LazyImages
from transferlab.engine import FeatureCache, TrainConfig, fit, seed_everything
from transferlab.engine.run import train_run
from transferlab.errors import DataError
from transferlab.models import HeadSpec, TransferModel, create_backbone
from transferlab.strategies import create_strategy


def _photos(root, per_class=8):
    """Three classes of small photos of mixed sizes and modes (RGB JPEG, grayscale PNG, RGBA WebP)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, bright in enumerate((30, 128, 220)):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            mode, size, suffix = [("RGB", (21, 15), "jpg"), ("L", (12, 12), "png"), ("RGBA", (14, 19), "webp")][i % 3]
            pixels = np.clip(rng.normal(bright, 25, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels, "RGB")
            (image.convert("RGBA") if mode == "RGBA" else image.convert(mode)).save(folder / f"{i}.{suffix}")
    return root


@pytest.fixture
def photos(tmp_path):
    return _photos(tmp_path / "photos")


@pytest.fixture
def lazy(monkeypatch):
    """Every image folder is read lazily (as one above the preload size would be)."""
    monkeypatch.setattr(imagefiles, "PRELOAD_BYTES", 0)


def test_a_large_folder_is_read_lazily_and_decodes_to_the_preloaded_pixels(photos, monkeypatch):
    eager = load_task(str(photos), image_size=16)
    assert isinstance(eager.x_pool, np.ndarray)
    monkeypatch.setattr(imagefiles, "PRELOAD_BYTES", 0)
    task = load_task(str(photos), image_size=16)
    assert isinstance(task.x_pool, LazyImages) and isinstance(task.x_test, LazyImages)
    assert task.x_pool.shape == eager.x_pool.shape == (len(eager.y_pool), 3, 16, 16)
    assert task.input_spec == eager.input_spec
    np.testing.assert_array_equal(np.asarray(task.x_pool), eager.x_pool)
    np.testing.assert_array_equal(np.asarray(task.x_test), eager.x_test)
    split = split_task(task, shots=2, seed=1)
    np.testing.assert_array_equal(np.asarray(split.x_train), split_task(eager, shots=2, seed=1).x_train)
    np.testing.assert_array_equal(task.x_pool[3], eager.x_pool[3])  # one row: decoded (C, H, W)


def _full_run(task, cfg, **kw):
    split = split_task(task, shots=4, seed=0)
    seed_everything(0)  # the scratch backbone's initial weights
    backbone = create_backbone("cnn", task.input_spec, channels=[4, 8])
    model, result, metrics = train_run(backbone, split, create_strategy("full"), cfg, **kw)
    return {k: v.clone() for k, v in model.state_dict().items()}, result, metrics


def test_training_on_a_lazy_folder_matches_the_preloaded_folder_exactly(photos, monkeypatch):
    cfg = TrainConfig(epochs=3, batch_size=4, seed=2, threads=1, augment="flip")
    eager = _full_run(load_task(str(photos), image_size=16), cfg)
    monkeypatch.setattr(imagefiles, "PRELOAD_BYTES", 0)
    task = load_task(str(photos), image_size=16)
    first, again = _full_run(task, cfg), _full_run(task, cfg)
    for run in (first, again):  # the same seed gives the same weights, lazily or not
        assert run[0].keys() == eager[0].keys() and all(torch.equal(run[0][k], eager[0][k]) for k in eager[0])
        assert run[2] == eager[2] and run[1].test_predictions == eager[1].test_predictions


def test_a_lazy_run_resumes_bit_identically(photos, lazy, tmp_path):
    task = load_task(str(photos), image_size=16)
    split = split_task(task, shots=5, seed=0)
    cfg = TrainConfig(epochs=4, batch_size=4, seed=3, threads=1, augment="crop")

    class Stop(Exception):
        pass

    def run(path=None, stop_at=None):
        seed_everything(cfg.seed)
        model = TransferModel(create_backbone("cnn", task.input_spec, channels=[4]), HeadSpec(3))
        strategy = create_strategy("full")
        strategy.prepare(model)
        calls = {"n": 0}

        def on_step(step, per_epoch):
            calls["n"] += 1
            if calls["n"] == stop_at:
                raise Stop

        fit(model, strategy, split.x_train, torch.from_numpy(split.y_train), split.x_val,
            torch.from_numpy(split.y_val), cfg, on_step=on_step, checkpoint=path, checkpoint_every=2, resume=True)
        return model.state_dict()

    assert isinstance(split.x_train, LazyImages)
    whole = run()
    path = tmp_path / "ck.pt"
    for stop in (3, 4):
        with pytest.raises(Stop):
            run(path, stop)
    resumed = run(path)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_frozen_prefix_over_a_lazy_folder_caches_only_features(photos, lazy, monkeypatch):
    task = load_task(str(photos), image_size=16)
    split = split_task(task, shots=4, seed=0)
    cache = FeatureCache()
    seed_everything(0)
    backbone = create_backbone("cnn", task.input_spec, channels=[4, 8])
    _, result, metrics = train_run(backbone, split, create_strategy("linear-probe"), TrainConfig(epochs=5, threads=1),
                                   cache=cache, cache_key="k")
    stored = list(cache._store.values())
    assert result.cached_blocks == len(backbone.block_names) and len(stored) == 2
    assert [tuple(t.shape) for t in stored] == [(len(task.x_pool), backbone.feature_dim),
                                                (len(task.x_test), backbone.feature_dim)]
    monkeypatch.setattr(imagefiles, "PRELOAD_BYTES", 1 << 40)
    eager = split_task(load_task(str(photos), image_size=16), shots=4, seed=0)
    assert isinstance(eager.x_train, np.ndarray)
    seed_everything(0)
    _, _, eager_metrics = train_run(create_backbone("cnn", task.input_spec, channels=[4, 8]), eager,
                                    create_strategy("linear-probe"), TrainConfig(epochs=5, threads=1))
    assert metrics["accuracy"] == pytest.approx(eager_metrics["accuracy"])


def test_a_folder_above_the_memory_limit_trains_lazily(photos, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_MAX_INPUT_BYTES", "20000")  # fewer bytes than the decoded folder
    with pytest.raises(DataError, match=r"image files as float32 pixels"):
        imagefiles.read_images(sorted(photos.glob("*/*")), 16, 0)
    task = load_task(str(photos), image_size=16)  # above the preload size here: lazy, nothing decoded
    assert isinstance(task.x_pool, LazyImages)
    _, _, metrics = _full_run(task, TrainConfig(epochs=2, batch_size=4, threads=1))
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n"] == len(task.y_test)


def test_a_file_broken_after_listing_is_named_when_its_batch_decodes(photos, lazy):
    task = load_task(str(photos), image_size=16)
    victim = task.x_pool.paths[0]
    victim.write_bytes(b"not an image any more")
    with pytest.raises(DataError, match=rf"cannot read image file .*{victim.name}.*Replace or remove the file"):
        np.asarray(task.x_pool[:2])
