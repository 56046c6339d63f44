"""Conformance: every registered strategy × every registered backbone, at tiny sizes (after scikit-learn's
`parametrize_with_checks`). No strategy or backbone name is written here: the pairs come from the
registries, the tiny sizes from each entry (`BackboneEntry.tiny`, `Strategy.tiny_options`), so a new
plug-in is checked as soon as it is registered.

For each pair: it trains exactly the parameters it says; the same seed gives identical weights (the
same instance run again, compared after every step up to a random one); a checkpoint at that step
(mid-epoch, mid-schedule) resumes bit-identically; the cached frozen prefix gives the uncached result;
the saved folder reloads to the same predictions; the ONNX export reproduces them (every backbone
architecture and every head architecture at least once). The --json contract of pretrain/finetune is
checked through the CLI per backbone and per strategy.
"""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import transferlab.engine.run as run_module
from conftest import make_split, make_task, make_text_task
from transferlab.artifacts import load_model_folder, save_model_folder
from transferlab.engine import TrainConfig
from transferlab.engine.run import train_run
from transferlab.models import backbone_entry, create_backbone, list_backbones
from transferlab.strategies import create_strategy, list_strategies, strategy_class

# SGD: Adam's normalised steps would turn float rounding (a text prefix cached at another padding length) into
# full-size updates of near-zero gradients, and cached vs uncached could then not be compared closely.
CFG = dict(epochs=3, batch_size=8, lr=1e-2, optimizer="sgd", restore_best=False, seed=5)
PAIRS = [(s, b) for b in list_backbones() for s in list_strategies()]


def _task(kind: str):
    return make_text_task() if kind == "text" else make_task(n_per_class=16, n_test_per_class=6)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("conformance")


_BACKBONES: dict[str, tuple] = {}  # backbone name → (pretrained, split): built once, deep-copied by every run


def _setup(strategy_name: str, backbone_name: str, scratch):
    if backbone_name not in _BACKBONES:
        entry = backbone_entry(backbone_name)
        task = _task(entry.inputs[0])
        split = make_split(task, shots=task.y_pool.tolist().count(0) // 2)  # half the pool unlabeled (for strategies needing it)
        torch.manual_seed(123)
        _BACKBONES[backbone_name] = create_backbone(backbone_name, task.input_spec, **entry.tiny_options(scratch)), split
    pretrained, split = _BACKBONES[backbone_name]
    strategy = create_strategy(strategy_name, **strategy_class(strategy_name).tiny_options)
    return pretrained, split, strategy


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _identical(a: dict, b: dict) -> list[str]:
    return [k for k in a if not torch.equal(a[k], b[k])]


def _check_trains_what_it_says(name, pretrained, model, run, strategy=None):
    trained = {n.split(".")[2] for n in run.trained_parameters if n.startswith("backbone.blocks.")}
    if getattr(strategy, "trains_head", True):  # a strategy may keep a given head (source-free keeps the source head)
        assert any(n.startswith("head.") for n in run.trained_parameters), f"{name}: the head did not train"
    # a strategy that re-estimates normalisation statistics (adabn) changes buffers of blocks whose weights stay
    buffers = {f"blocks.{k}" for k, _ in model.backbone.blocks.named_buffers()} \
        if getattr(strategy, "adapts_statistics", False) else set()
    assert run.trainable_params == 0 or run.trained_parameters
    before, after = pretrained.state_dict(), model.backbone.state_dict()
    for block in model.backbone.block_names:
        keys = [k for k in before if k.startswith(f"blocks.{block}.") and k not in buffers]
        if not keys:
            continue  # a parameter-free block (text pooling)
        changed = [k for k in keys if not torch.equal(before[k], after[k])]
        if block in trained:
            assert changed, f"{name}: says block {block!r} trained, but its weights did not change"
        else:  # weights and BatchNorm statistics untouched
            assert not changed, f"{name}: says block {block!r} was frozen, but {changed[:3]} changed"


def _run_recording(pretrained, split, strategy, monkeypatch, states, stop=None, **kwargs):
    """train_run appending the model's state to `states` after every step; with `stop`, interrupted after that step."""
    real_fit = run_module.fit

    def recording_fit(model, *args, **kw):
        def on_step(step, per_epoch):
            states.append(_state(model))
            if len(states) == stop:
                raise KeyboardInterrupt

        return real_fit(model, *args, **(kw | {"on_step": on_step}))

    monkeypatch.setattr(run_module, "fit", recording_fit)
    try:
        return train_run(copy.deepcopy(pretrained), split, strategy, TrainConfig(**CFG), **kwargs)
    finally:
        monkeypatch.setattr(run_module, "fit", real_fit)


def _folder(model, split, path):
    text = model.backbone.input_spec.kind == "text"
    info = {"label_names": split.task.class_names, "target": "class",
            "preprocessing": {"text_column": "text"} if text else {"image_size": None, "image_margin": 0}}
    save_model_folder(path, backbone=model.backbone, head=model.head, head_spec=model.head_spec, info=info)
    return path


_EXPORTED: set[str] = set()  # backbone and head architectures already exported (the export depends on them only)


@pytest.mark.parametrize("strategy_name, backbone_name", PAIRS)
def test_conformance(strategy_name, backbone_name, scratch, tmp_path, monkeypatch):
    name = f"{strategy_name} on {backbone_name}"
    pretrained, split, strategy = _setup(strategy_name, backbone_name, scratch)
    steps: list[dict] = []
    model, run, metrics = _run_recording(pretrained, split, strategy, monkeypatch, steps)
    reference = _state(model)
    assert run.epochs == 3 and 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n"] == len(split.y_test)
    _check_trains_what_it_says(name, pretrained, model, run, strategy)

    # The same instance again, same seed: identical weights after every step up to a random one (mid-run, often
    # mid-epoch, mid-schedule), where it is interrupted; resumed from its checkpoint it ends where the first run did.
    stop = random.Random(f"{strategy_name}/{backbone_name}").randint(2, run.steps - 1)
    # the checkpoint the resumed run starts from: after step stop − 1 (the interrupt comes before step stop's save);
    # every = stop − 1 writes just that one mid-run (an epoch end writes its own)
    path, again, every = tmp_path / "c.pt", [], stop - 1
    with pytest.raises(KeyboardInterrupt):
        _run_recording(pretrained, split, strategy, monkeypatch, again, stop=stop, checkpoint=path, checkpoint_every=every)
    differ = [(i + 1, _identical(a, b)[:3]) for i, (a, b) in enumerate(zip(steps, again)) if _identical(a, b)]
    assert len(again) == stop and not differ, f"{name}: the same seed gave different weights (step, tensors): {differ[:1]}"
    assert path.is_file(), f"{name}: interrupted at step {stop}, it left no checkpoint to resume from"
    resumed = train_run(copy.deepcopy(pretrained), split, strategy, TrainConfig(**CFG), checkpoint=path,
                        checkpoint_every=every, resume=True)[0]
    differ = _identical(reference, _state(resumed))
    assert not differ, f"{name}: resumed at step {stop} of {run.steps}, {differ[:3]} differ from the uninterrupted run"

    if run.cached_blocks:
        uncached, run_u, _ = train_run(copy.deepcopy(pretrained), split, strategy, TrainConfig(**CFG), cache=False)
        assert run_u.cached_blocks == 0
        for key, value in _state(uncached).items():
            # float rounding only (a text prefix is cached at another padding length): a wrong cache moves far more
            assert torch.allclose(value.float(), reference[key].float(), atol=1e-3), f"{name}: cached ≠ uncached at {key}"
        assert [h["val_accuracy"] for h in run_u.history] == [h["val_accuracy"] for h in run.history]

    folder = _folder(model, split, tmp_path / "model")
    loaded = load_model_folder(folder)
    x = model.backbone.prepare_inputs(split.x_test)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=1e-6)

    # every backbone architecture and every head architecture is exported at least once (a model is backbone → head)
    architecture = json.loads((folder / "config.json").read_text())["architecture"]
    parts = {json.dumps({part: architecture.get(part)}, sort_keys=True) for part in ("backbone", "head")}
    if not parts <= _EXPORTED:
        pytest.importorskip("onnxruntime")
        from transferlab.export import export

        result = export(folder, tmp_path / "model.onnx")
        assert result.parity_max_abs_diff <= 1e-4, f"{name}: ONNX differs by {result.parity_max_abs_diff}"
        _EXPORTED.update(parts)


# --json contract keys (the README's): per backbone through pretrain + finetune, per strategy through finetune
PRETRAIN_KEYS = {"out", "val_accuracy", "train_seconds", "epochs"}
FINETUNE_KEYS = {"out", "strategy", "shots", "val_accuracy", "test_accuracy", "train_seconds", "trainable_params",
                 "total_params"}
runner = CliRunner()


def _data_file(kind: str, folder) -> str:
    task = _task(kind)
    if kind == "text":
        import csv

        path = folder / "data.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for text, label in zip(np.concatenate([task.x_pool, task.x_test]), np.concatenate([task.y_pool, task.y_test])):
                writer.writerow([text, task.class_names[label]])
        return str(path)
    path = folder / "data.npz"
    x = np.concatenate([task.x_pool, task.x_test])[:, 0]
    np.savez(path, x=(x * 255).astype(np.uint8), y=np.concatenate([task.y_pool, task.y_test]))
    return str(path)


def _json(*args) -> dict:
    result = runner.invoke(__import__("transferlab.cli", fromlist=["app"]).app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _pretrained_folder(backbone_name: str, scratch, folder) -> tuple[str, str]:
    """Pretrain the tiny backbone through the CLI, its tiny options given as the generated flags."""
    entry = backbone_entry(backbone_name)
    data = _data_file(entry.inputs[0], folder)
    flags = []
    for key, value in entry.tiny_options(scratch).items():
        flags += ["--" + key.replace("_", "-"), ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    out = folder / "pretrained"
    record = _json("pretrain", "--data", data, "--backbone", backbone_name, *flags, "--epochs", "1", "--out", out,
                   "--quiet", "--json")
    assert PRETRAIN_KEYS <= set(record)
    return str(out), data


@pytest.mark.parametrize("backbone_name", list_backbones())
def test_json_contract_per_backbone(backbone_name, scratch, tmp_path):
    model, data = _pretrained_folder(backbone_name, scratch, tmp_path)
    baseline = list_strategies()[0]
    record = _json("finetune", model, "--data", data, "--strategy", baseline, "--shots", "4", "--epochs", "1",
                   "--out", tmp_path / "ft", "--json")
    assert FINETUNE_KEYS <= set(record) and record["strategy"] == baseline


@pytest.fixture(scope="module")
def image_model(scratch, tmp_path_factory):
    """A pretrained folder of the first registered backbone that takes images (derived, not named)."""
    name = next(b for b in list_backbones() if "image" in backbone_entry(b).inputs)
    return _pretrained_folder(name, scratch, tmp_path_factory.mktemp("image-model"))


@pytest.mark.parametrize("strategy_name", list_strategies())
def test_json_contract_per_strategy(strategy_name, image_model, tmp_path):
    model, data = image_model
    options = []
    for key, value in strategy_class(strategy_name).tiny_options.items():
        options += ["--" + key.replace("_", "-"), str(value)]
    if strategy_class(strategy_name).needs_unlabeled:  # domain adaptation: the target's pool without its labels
        options += ["--unlabeled-data", "train"]
    record = _json("finetune", model, "--data", data, "--strategy", strategy_name, *options, "--shots", "4",
                   "--epochs", "1", "--out", tmp_path / "ft", "--json")
    assert FINETUNE_KEYS <= set(record) and record["strategy"] == strategy_name
