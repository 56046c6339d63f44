"""Shared fixtures: tiny synthetic tasks (fast), an isolated model store."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

# No test may depend on wall-clock time: hypothesis' per-example deadline is off for every test, so a busy
# machine never fails the suite at random (a real hang is a bug in a bound, tested on its own).
settings.register_profile("transferlab", deadline=None)
settings.load_profile("transferlab")

from transferlab.data.task import InputSpec, Task, TaskSplit


def make_task(n_per_class: int = 30, n_test_per_class: int = 10, classes: int = 3, size: int = 8, seed: int = 0) -> Task:
    """Images (N, 1, size, size) in [0, 1]: each class lights a different band of rows, plus noise."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(classes), n)
        x = rng.uniform(0, 0.3, size=(len(y), 1, size, size)).astype(np.float32)
        band = size // classes
        for i, c in enumerate(y):
            x[i, 0, c * band : (c + 1) * band, :] += 0.6
        return np.clip(x, 0, 1), y.astype(np.int64)

    x_pool, y_pool = draw(n_per_class)
    x_test, y_test = draw(n_test_per_class)
    return Task(
        name="tiny",
        x_pool=x_pool,
        y_pool=y_pool,
        x_test=x_test,
        y_test=y_test,
        class_names=[f"c{i}" for i in range(classes)],
        input_spec=InputSpec("image", (1, size, size)),
        source="synthetic",
        preprocessing={"image_size": None, "image_margin": 0, "classes": None},
    )


def squares_npz(tmp_path, n=24):
    """`n` 28×28 uint8 images in 2 classes (class 1: a bright square) saved as tmp_path/squares.npz: (path, x, y)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), n // 2)
    x = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    x[y == 1, 8:20, 8:20] = 250  # class 1: a bright square
    path = tmp_path / "squares.npz"
    np.savez(path, x=x, y=y)
    return path, x, y


def make_split(task: Task, shots: int | None = None, seed: int = 0) -> TaskSplit:
    """A split built without the data package: the last 20% of each class is validation."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in range(task.num_classes):
        idx = np.flatnonzero(task.y_pool == c)
        cut = int(len(idx) * 0.8)
        val_idx += list(idx[cut:])
        pool = idx[:cut]
        train_idx += list(rng.choice(pool, size=shots, replace=False) if shots else pool)
    return TaskSplit(
        task=task,
        x_train=task.x_pool[train_idx],
        y_train=task.y_pool[train_idx],
        x_val=task.x_pool[val_idx],
        y_val=task.y_pool[val_idx],
        shots=shots,
        seed=seed,
        train_index=np.array(train_idx, dtype=np.int64),
        val_index=np.array(val_idx, dtype=np.int64),
    )


@pytest.fixture
def tiny_task() -> Task:
    return make_task()


@pytest.fixture
def tiny_split(tiny_task: Task) -> TaskSplit:
    return make_split(tiny_task)


@pytest.fixture(autouse=True)
def isolated_store(tmp_path_factory, monkeypatch):
    """Every test gets its own empty model store; nothing touches ~/.transferlab."""
    root = tmp_path_factory.mktemp("store")
    monkeypatch.setenv("TRANSFERLAB_HOME", str(root))
    return root


TEXT_TEMPLATES = {
    "sport": ["the team won the match", "a great goal in the final", "the player scored twice", "fans cheered the striker"],
    "food": ["the soup was delicious", "we baked fresh bread", "a spicy curry for dinner", "the cake tasted sweet"],
    "tech": ["the laptop needs an update", "install the new software", "the phone battery died", "a fast processor chip"],
}


def make_text_task(n_per_class: int = 12, n_test_per_class: int = 4, seed: int = 0) -> Task:
    """Short sentences of three topics (object arrays of str), like a tiny topic-classification set."""
    rng = np.random.default_rng(seed)
    names = list(TEXT_TEMPLATES)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        texts, labels = [], []
        for c, name in enumerate(names):
            for _ in range(n):
                base = TEXT_TEMPLATES[name][rng.integers(len(TEXT_TEMPLATES[name]))]
                texts.append(f"{base} {'today' if rng.random() < 0.5 else 'again'}")
                labels.append(c)
        return np.array(texts, dtype=object), np.array(labels, dtype=np.int64)

    x_pool, y_pool = draw(n_per_class)
    x_test, y_test = draw(n_test_per_class)
    return Task(name="tiny-text", x_pool=x_pool, y_pool=y_pool, x_test=x_test, y_test=y_test, class_names=names,
                input_spec=InputSpec("text", ()), source="synthetic",
                preprocessing={"text_column": "text", "label_column": "label", "classes": None})


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory):
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, saved as a local Hugging Face folder."""
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer, BertConfig, BertModel

    from transferlab.models.text import minilm_path

    path = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(path)
    return path


def save_tiny_vision_model(path, kind: str = "vit"):
    """A tiny randomly initialised Hugging Face vision model (ViT or ResNet) with its image processor config."""
    import json

    import torch
    from transformers import ResNetConfig, ResNetModel, ViTConfig, ViTModel

    torch.manual_seed(0)
    if kind == "vit":
        model = ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=32))
        prep = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 16, "width": 16},
                "resample": 2, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    else:
        model = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"))
        prep = {"image_processor_type": "ConvNextImageProcessor", "do_resize": True, "size": {"shortest_edge": 20},
                "crop_size": {"height": 16, "width": 16}, "do_center_crop": True, "resample": 3,
                "do_normalize": True, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
    model.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(prep))
    return path


@pytest.fixture(scope="session")
def tiny_vit_path(tmp_path_factory):
    pytest.importorskip("transformers")
    return save_tiny_vision_model(tmp_path_factory.mktemp("tiny-vit"), "vit")


def kill_after_runs(cmd: list[str], runs_db, at_least: int, *, timeout: float, env: dict | None = None,
                    finished_only: bool = False) -> tuple[int, bool]:
    """Start `cmd` (a compare), SIGKILL it once its `runs_db` (runs.sqlite) holds `at_least` runs (with
    `finished_only`, runs whose status is 'finished') or after `timeout` seconds.

    Returns (runs counted at the kill, whether the process was still running then): a resume test asserts
    the second is True, else the command finished before it could be killed.
    """
    import signal
    import sqlite3
    import subprocess
    import time
    from pathlib import Path

    runs_db = Path(runs_db)
    query = "SELECT COUNT(*) FROM runs" + (" WHERE status='finished'" if finished_only else "")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    counted = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if runs_db.exists():  # connecting first would create an empty file where the compare makes its store
            try:
                with sqlite3.connect(runs_db) as db:
                    counted = db.execute(query).fetchone()[0]
            except sqlite3.OperationalError:
                counted = 0
            if counted >= at_least:
                break
        time.sleep(0.05)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return counted, alive
