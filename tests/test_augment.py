"""--augment: random image transforms per training batch, repeatable, resumable, refused where meaningless."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_split, make_task, make_text_task
from transferlab.cli import app
from transferlab.engine import TrainConfig, fit, seed_everything
from transferlab.engine.run import train_run
from transferlab.engine.augment import augment_batch
from transferlab.errors import ConfigError
from transferlab.models import HeadSpec, TransferModel, create_backbone
from transferlab.strategies import create_strategy

runner = CliRunner()


def _square(size: int = 28) -> torch.Tensor:
    x = torch.zeros(4, 1, size, size)
    x[:, :, 10:18, 10:18] = 1.0
    return x


def test_none_returns_the_batch_untouched():
    x = _square()
    assert augment_batch(x, "none", torch.Generator().manual_seed(0)) is x


@pytest.mark.parametrize("kind", ["shift", "affine", "crop", "flip", "color", "photo"])
def test_transforms_are_drawn_from_the_generator(kind):
    x = _square()
    if kind in ("flip", "color"):  # an off-centre object of a different brightness per image
        x = torch.roll(x, shifts=(-6, -7), dims=(2, 3)) * torch.linspace(0.2, 0.9, 4).view(4, 1, 1, 1)
    a = augment_batch(x, kind, torch.Generator().manual_seed(1))
    b = augment_batch(x, kind, torch.Generator().manual_seed(1))
    c = augment_batch(x, kind, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # each image of a batch gets its own transform
    assert a.min() >= 0 and a.max() <= 1


def test_photo_transforms_crop_flip_and_jitter_rgb_photos():
    photo = torch.rand(8, 3, 40, 60)
    flipped = augment_batch(photo, "flip", torch.Generator().manual_seed(0))
    mirrored = [torch.equal(f, p.flip(-1)) for f, p in zip(flipped, photo)]
    assert all(m or torch.equal(f, p) for m, f, p in zip(mirrored, flipped, photo)) and 0 < sum(mirrored) < 8
    cropped = augment_batch(photo, "crop", torch.Generator().manual_seed(0))
    assert cropped.shape == photo.shape and not torch.allclose(cropped, photo)
    jittered = augment_batch(photo, "color", torch.Generator().manual_seed(0))
    assert jittered.shape == photo.shape and not torch.allclose(jittered.mean((1, 2, 3)), photo.mean((1, 2, 3)))


def test_shift_moves_the_object_by_at_most_ten_percent_of_the_side():
    x = _square()
    y = augment_batch(x, "shift", torch.Generator().manual_seed(0))
    rows = torch.arange(28.0).view(1, 28, 1)
    cols = torch.arange(28.0).view(1, 1, 28)

    def centre(img):
        m = img[:, 0]
        return (m * rows).sum((1, 2)) / m.sum((1, 2)), (m * cols).sum((1, 2)) / m.sum((1, 2))

    (r0, c0), (r1, c1) = centre(x), centre(y)
    moved = torch.maximum((r1 - r0).abs(), (c1 - c0).abs())
    assert (moved > 0.05).all() and (moved <= 2.8 + 1e-3).all()
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=1e-3)  # moved, not rescaled


def test_unknown_augment_is_refused():
    with pytest.raises(ConfigError, match=r"--augment 'mixup' is not one of \['none', 'shift', 'affine', 'crop', "
                                          r"'flip', 'color', 'photo'\]"):
        TrainConfig(augment="mixup")


def test_text_inputs_are_refused_before_training(tiny_bert_path):
    split = make_split(make_text_task())
    backbone = create_backbone("hf", split.task.input_spec, path=str(tiny_bert_path))
    with pytest.raises(ConfigError, match="--augment affine transforms images; this task's inputs are texts"):
        train_run(backbone, split, create_strategy("full"), TrainConfig(epochs=1, augment="affine", threads=1))


def test_augmented_run_is_repeatable_and_differs_from_plain():
    split = make_split(make_task(size=12))

    def weights(augment):
        seed_everything(0)
        backbone = create_backbone("cnn", split.task.input_spec, channels=[4], hidden=8)
        model, run, metrics = train_run(backbone, split, create_strategy("full"),
                                        TrainConfig(epochs=3, augment=augment, threads=1))
        assert run.config["augment"] == augment
        return model.state_dict(), metrics

    (a, ma), (b, mb), (plain, _) = weights("affine"), weights("affine"), weights("none")
    assert all(torch.equal(a[k], b[k]) for k in a) and ma == mb
    assert not all(torch.equal(a[k], plain[k]) for k in a)


def test_a_frozen_prefix_is_not_cached_when_augmenting():
    split = make_split(make_task(size=12))
    backbone = create_backbone("cnn", split.task.input_spec, channels=[4], hidden=8)
    _, run, _ = train_run(backbone, split, create_strategy("linear-probe"), TrainConfig(epochs=2, augment="shift", threads=1))
    assert run.cached_blocks == 0


@pytest.mark.parametrize("augment", ["affine", "photo"])
def test_resume_with_augment_is_bit_identical(tmp_path, augment):
    split = make_split(make_task(size=12))
    cfg = TrainConfig(epochs=4, batch_size=8, augment=augment, seed=5, threads=1)
    tensors = [torch.from_numpy(a) for a in (split.x_train, split.y_train, split.x_val, split.y_val)]

    def run(stop_at=None, path=None):
        seed_everything(cfg.seed)
        model = TransferModel(create_backbone("cnn", split.task.input_spec, channels=[4], hidden=8), HeadSpec(3))
        strategy = create_strategy("full")
        strategy.prepare(model)
        calls = {"n": 0}

        def on_step(step, per_epoch):
            calls["n"] += 1
            if calls["n"] == stop_at:
                raise KeyboardInterrupt

        fit(model, strategy, *tensors, cfg, on_step=on_step, checkpoint=path, checkpoint_every=2, resume=True)
        return model.state_dict()

    reference = run()
    path = tmp_path / "checkpoint.pt"
    for stop in np.random.default_rng(0).integers(1, 8, size=3):
        with pytest.raises(KeyboardInterrupt):
            run(stop_at=int(stop), path=path)
    resumed = run(path=path)
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


def test_cli_finetune_refuses_augment_on_text(tmp_path):
    data = tmp_path / "t.csv"
    data.write_text("text,label\n" + "".join(f"sentence number {i},{i % 2}\n" for i in range(40)))
    result = runner.invoke(app, ["finetune", "minilm", "--data", str(data), "--augment", "shift", "--epochs", "1"])
    assert result.exit_code != 0
    assert "--augment shift transforms images; this task's inputs are texts" in result.output
    assert "Traceback" not in result.output
