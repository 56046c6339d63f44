"""Domain adaptation: unlabeled target data, --shots 0, source data, the six strategies, and their guarantees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from transferlab.api import finetune, load, pretrain
from transferlab.cli import app
from transferlab.data import load_task, parse_shots
from transferlab.data.unlabeled import load_source_rows, load_unlabeled, match_classes
from transferlab.engine import TrainConfig
from transferlab.engine.adaptation import adaptation_run, adaptation_strategies, source_only_metrics
from transferlab.errors import ConfigError, DataError
from transferlab.strategies import create_strategy

DA = ["adabn", "dann", "coral", "mmd", "self-training", "source-free"]
runner = CliRunner()


def _digits(n_per_class: int, seed: int, *, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """uint8 12×12 images of 3 classes (a lit band of rows each); `shift` brightens the background (the domain)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    x = rng.integers(0, 60, size=(len(y), 12, 12)).astype(np.float64) + shift
    for i, c in enumerate(y):
        x[i, c * 4 : (c + 1) * 4] = 220 - shift / 2
    return np.clip(x, 0, 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> dict[str, Path]:
    """A source domain, a shifted target domain (same class names), and a tiny cnn pretrained on the source."""
    root = tmp_path_factory.mktemp("da")
    x, y = _digits(40, 0, shift=0)
    np.savez(root / "source.npz", x=x, y=y)
    x, y = _digits(40, 1, shift=90)
    np.savez(root / "target.npz", x=x, y=y)
    xt, yt = _digits(10, 2, shift=90)
    np.savez(root / "split.npz", x_train=x, y_train=y, x_test=np.full_like(xt, 255), y_test=yt)
    pretrain(str(root / "source.npz"), backbone="cnn", backbone_config={"channels": [4, 8], "hidden": 16},
             out=root / "src", train=TrainConfig(epochs=4, threads=1))
    return {"root": root, "source": root / "source.npz", "target": root / "target.npz", "split": root / "split.npz",
            "model": root / "src"}


def _run(domains, strategy: str, *, seed: int = 0, shots: int = 0, **kw):
    return finetune(str(domains["model"]), str(domains["target"]), strategy=strategy, shots=shots,
                    unlabeled_data="train", train=TrainConfig(epochs=2, batch_size=16, seed=seed, threads=1), **kw)


def test_the_six_strategies_are_registered_and_learn_without_labels():
    assert sorted(adaptation_strategies()) == sorted(DA)
    assert sorted(adaptation_strategies(source=True)) == ["coral", "dann", "mmd", "self-training"]
    for name in DA:
        doc = type(create_strategy(name)).__module__
        assert doc.startswith("transferlab.strategies.")
        assert "20" in __import__(doc, fromlist=["x"]).__doc__  # the paper and its year


@pytest.mark.parametrize("strategy", DA)
def test_each_strategy_adapts_at_zero_shots_and_is_deterministic(domains, strategy, tmp_path):
    a = _run(domains, strategy, out=tmp_path / "a")
    b = _run(domains, strategy, out=tmp_path / "b")
    assert a.shots == 0 and a.test_accuracy is not None
    assert a.test_accuracy == b.test_accuracy
    wa, wb = load(tmp_path / "a").model.state_dict(), load(tmp_path / "b").model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    record = json.loads((tmp_path / "a" / "config.json").read_text())["adaptation"]
    pool = len(load_task(str(domains["target"])).y_pool)  # the target's pool: its test split is not in it
    assert record["unlabeled_data"] == "train" and record["n_unlabeled"] == pool
    source_pool = len(load_task(str(domains["source"])).y_pool)
    expected = 0 if strategy in ("adabn", "source-free") else source_pool - 3 * round(source_pool / 3 * 0.1)
    assert record["n_source"] == expected  # the source pool's training rows (its validation rows held out)
    assert "no target labels" in record["model_selection"]


@pytest.mark.parametrize("strategy", ["dann", "source-free"])
def test_few_labels_combine_with_the_unlabeled_pool(domains, strategy):
    r = _run(domains, strategy, shots=3)
    assert r.shots == 3 and 0 <= r.test_accuracy <= 1


def test_the_test_split_is_never_read(domains, monkeypatch):
    """The target's test images are NaN: any training step that read one would diverge (TrainingDiverged)."""
    from transferlab.data.options import DataOptions

    real_load = DataOptions.load

    def poisoned(self, *args, **kwargs):
        task = real_load(self, *args, **kwargs)
        task.x_test = np.full_like(task.x_test, np.nan)
        return task

    monkeypatch.setattr(DataOptions, "load", poisoned)
    for strategy in DA:
        r = finetune(str(domains["model"]), str(domains["target"]), strategy=strategy, shots=0, unlabeled_data="train",
                     train=TrainConfig(epochs=1, batch_size=16, threads=1))
        assert r.epochs == 1  # trained to the end: no step saw a test row
    # The unlabeled rows are the pool's inputs, never the test split's; a split file gives its x_train only.
    task = load_task(str(domains["split"]))
    assert load_unlabeled("train", task) is task.x_pool
    rows = load_unlabeled(str(domains["split"]), task)
    assert rows.shape == task.x_pool.shape and rows.max() < 1.0  # its test images are all 255 (1.0)


def test_unlabeled_data_from_a_file_ignores_its_labels(domains, tmp_path):
    x, _ = _digits(5, 3, shift=90)
    np.savez(tmp_path / "unlabeled.npz", x=x)  # no labels at all
    np.savez(tmp_path / "labelled.npz", x=x, y=np.array(["not", "a", "class"] * 5))  # labels of no known class
    task = load_task(str(domains["target"]))
    assert load_unlabeled(str(tmp_path / "unlabeled.npz"), task).shape == (15, 1, 12, 12)
    assert load_unlabeled(str(tmp_path / "labelled.npz"), task).shape == (15, 1, 12, 12)
    r = finetune(str(domains["model"]), str(domains["target"]), strategy="source-free", shots=0,
                 unlabeled_data=str(tmp_path / "labelled.npz"), train=TrainConfig(epochs=1, threads=1))
    assert r.test_accuracy is not None
    with pytest.raises(DataError, match="no such file, folder or built-in dataset; pass 'train'"):
        load_unlabeled(str(tmp_path / "missing.npz"), task)


def test_source_only_baseline_and_class_matching(domains):
    pretrained, task = load(domains["model"]), load_task(str(domains["target"]))
    names = pretrained.config["source_task"]["label_names"]
    metrics = source_only_metrics(pretrained.backbone, pretrained.source_head, names, task)
    logits = pretrained.source_head(pretrained.backbone.eval().features(torch.from_numpy(task.x_test)))
    assert metrics["accuracy"] == pytest.approx((logits.argmax(1).numpy() == task.y_test).mean())
    reordered = load_task(str(domains["target"]), classes=["2", "0"])  # a subset, in another order
    sub = source_only_metrics(pretrained.backbone, pretrained.source_head, names, reordered)
    keep = np.isin(task.y_test, [0, 2])
    restricted = logits[torch.from_numpy(keep)][:, [2, 0]].argmax(1).numpy()
    assert sub["accuracy"] == pytest.approx((restricted == reordered.y_test).mean())
    assert source_only_metrics(pretrained.backbone, pretrained.source_head, ["a", "b", "c"], task) is None
    assert match_classes(["0", "1", "2"], ["2", "0"], source="s", target="t").tolist() == [1, -1, 0]
    with pytest.raises(DataError, match="no class name is shared"):
        match_classes(["a"], ["b"], source="s", target="t")


def test_source_rows_are_relabelled_and_exclude_the_source_test_split(domains):
    task = load_task(str(domains["target"]), classes=["1", "2"])
    rows = load_source_rows(str(domains["source"]), {}, task)
    assert rows.matched == ["1", "2"] and set(rows.y_train.tolist()) == {0, 1}
    source = load_task(str(domains["source"]))
    assert len(rows.y_train) + len(rows.y_val) == 2 * len(source.y_pool) // 3  # pool rows of the 2 matched classes


def test_adabn_sets_batchnorm_statistics_to_the_target_domain(domains):
    pretrained, task = load(domains["model"]), load_task(str(domains["target"]))
    model, run, _, _ = adaptation_run(pretrained.backbone, task, create_strategy("adabn"),
                                      TrainConfig(epochs=1, batch_size=40, threads=1), shots=0, unlabeled=task.x_pool,
                                      source_head=pretrained.source_head, source_names=["0", "1", "2"])
    conv = model.backbone.blocks["conv1"][0]
    bn = model.backbone.blocks["conv1"][1]
    with torch.no_grad():
        out = conv(torch.from_numpy(task.x_pool))
    # every batch (the pool's rows, and as many drawn from it) is target data
    assert torch.allclose(bn.running_mean, out.mean((0, 2, 3)), atol=0.05)
    assert run.trainable_params == sum(p.numel() for p in model.head.parameters())


class Stop(Exception):
    pass


@pytest.mark.parametrize("strategy, options", [
    ("dann", {}), ("source-free", {}), ("self-training", {}),
    ("source-free", {"pseudo_weight": 0.3, "centroids": "epoch"}),  # per-epoch pseudo-labels live in the checkpoint
], ids=["dann", "source-free", "self-training", "source-free-epoch-pseudo-labels"])
def test_resume_mid_run_is_bit_identical(domains, strategy, options, tmp_path, monkeypatch):
    import transferlab.engine.run as run_module

    cfg = TrainConfig(epochs=3, batch_size=16, seed=1, threads=1, schedule="cosine")

    def go(out, **kw):
        return finetune(str(domains["model"]), str(domains["target"]), strategy=strategy, shots=0,
                        unlabeled_data="train", train=cfg, out=out, strategy_options=options, **kw)

    whole = go(tmp_path / "whole")
    real = run_module.fit

    def interrupted_fit(*args, **kwargs):
        steps = {"n": 0}

        def on_step(step, per_epoch):
            steps["n"] += 1
            if steps["n"] == 7:  # mid-epoch, two steps after the step checkpoint at 5
                raise Stop

        return real(*args, **(kwargs | {"on_step": on_step}))

    monkeypatch.setattr(run_module, "fit", interrupted_fit)
    with pytest.raises(Stop):
        go(tmp_path / "cut", checkpoint_every=5)
    monkeypatch.setattr(run_module, "fit", real)
    resumed = go(tmp_path / "cut", checkpoint_every=5, resume=True)
    assert resumed.test_accuracy == whole.test_accuracy
    wa, wb = load(tmp_path / "whole").model.state_dict(), load(tmp_path / "cut").model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_user_errors_name_the_fix(domains, tmp_path):
    model, target = str(domains["model"]), str(domains["target"])
    cfg = TrainConfig(epochs=1, threads=1)
    with pytest.raises(ConfigError, match="--shots 0 trains without any target label, which strategy 'full' cannot do"):
        finetune(model, target, strategy="full", shots=0, train=cfg)
    with pytest.raises(ConfigError, match="learns from unlabeled target data; pass --unlabeled-data PATH"):
        finetune(model, target, strategy="dann", shots=0, train=cfg)
    with pytest.raises(ConfigError, match="strategy 'full' does not use unlabeled data; drop --unlabeled-data"):
        finetune(model, target, strategy="full", shots=3, unlabeled_data="train", train=cfg)
    with pytest.raises(ConfigError, match="strategy 'source-free' uses no labelled source data; drop --source-data"):
        finetune(model, target, strategy="source-free", shots=0, unlabeled_data="train", source_data=target, train=cfg)
    with pytest.raises(DataError, match="no class name is shared"):
        finetune(model, str(domains["target"]), strategy="dann", shots=0, unlabeled_data="train", classes=None,
                 source_data=_renamed(domains, tmp_path), train=cfg)
    with pytest.raises(DataError, match=r"got 0\. Use 'all' for every training example \(0 is for strategies"):
        parse_shots("0")
    assert parse_shots("0", allow_zero=True) == 0


def _renamed(domains, tmp_path) -> str:
    x, y = _digits(20, 5, shift=0)
    np.savez(tmp_path / "letters.npz", x=x, y=np.array(["a", "b", "c"])[y])
    return str(tmp_path / "letters.npz")


def test_source_free_needs_a_source_head_that_names_the_classes(domains, tmp_path):
    x, y = _digits(30, 6, shift=90)
    np.savez(tmp_path / "letters.npz", x=x, y=np.array(["a", "b", "c"])[y])
    with pytest.raises(ConfigError, match="its head must be the pretrained model's source head with the target's classes"):
        finetune(str(domains["model"]), str(tmp_path / "letters.npz"), strategy="source-free", shots=0,
                 unlabeled_data="train", train=TrainConfig(epochs=1, threads=1))


def test_shot_pseudo_labels_are_the_nearest_refined_centroid():
    from transferlab.strategies.source_free import cluster_labels

    torch.manual_seed(0)
    centres = torch.eye(3) * 5  # three well-separated clusters in feature space
    features = torch.cat([centres[c] + 0.3 * torch.randn(20, 3) for c in range(3)]).abs()  # (60, 3)
    truth = torch.arange(3).repeat_interleave(20)
    noisy = torch.nn.functional.one_hot(truth, 3).float() * 0.6 + 0.4 / 3  # the classifier is right, unsure
    noisy[:10] = torch.tensor([0.2, 0.7, 0.1])  # and wrong on half of cluster 0
    assert torch.equal(cluster_labels(features, noisy), truth)  # the clusters correct the classifier's mistakes
    never = noisy.clone()
    never[:, 2] = 0.0  # a class no row is predicted as is never a pseudo-label
    assert 2 not in cluster_labels(features, never / never.sum(1, keepdim=True)).tolist()


def test_shot_epoch_pseudo_labels_cover_the_whole_target_set_once_per_epoch(domains, monkeypatch):
    from transferlab.strategies import source_free

    calls = []
    real = source_free.cluster_labels
    monkeypatch.setattr(source_free, "cluster_labels", lambda f, p: calls.append(len(f)) or real(f, p))
    pool = len(load_task(str(domains["target"])).y_pool)
    r = _run(domains, "source-free", strategy_options={"pseudo_weight": 0.3})
    assert r.epochs == 2 and calls == [pool, pool]  # the whole unlabeled set, at each epoch's start
    calls.clear()
    _run(domains, "source-free", strategy_options={"pseudo_weight": 0.3, "centroids": "batch"})
    assert len(calls) > 2 and max(calls) <= 2 * 16  # each step's own unlabeled rows
    with pytest.raises(ConfigError, match=r"--centroids must be one of \['epoch', 'batch'\]; got 'global'\. epoch: "):
        create_strategy("source-free", centroids="global")


def test_self_training_strong_views_for_vectors_and_text():
    from transferlab.strategies.self_training import SelfTrainingConfig, strong_view

    cfg, gen = SelfTrainingConfig(drop=0.5), torch.Generator().manual_seed(0)
    vectors = torch.ones(4, 10)
    view = strong_view(vectors, cfg, gen)
    assert view.shape == vectors.shape and (view.abs() < 0.5).any() and not torch.equal(view, vectors)
    packed = torch.stack([torch.arange(1, 9).repeat(3, 1), torch.ones(3, 8, dtype=torch.long)], dim=1)  # (3, 2, 8)
    view = strong_view(packed, cfg, gen)
    assert torch.equal(view[:, 0], packed[:, 0]) and (view[:, 1, 0] == 1).all() and view[:, 1].sum() < packed[:, 1].sum()
    again = strong_view(packed, cfg, torch.Generator().manual_seed(0).manual_seed(0))
    assert again.shape == packed.shape
    with pytest.raises(ConfigError, match=r"--drop must be in \[0, 1\); got 1.5"):
        SelfTrainingConfig(drop=1.5)


def test_cli_source_free_at_zero_shots_then_evaluate(domains, tmp_path):
    out = tmp_path / "adapted"
    result = runner.invoke(app, ["finetune", str(domains["model"]), "--data", str(domains["target"]), "--strategy",
                                 "source-free", "--shots", "0", "--unlabeled-data", "train", "--epochs", "2",
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    ft = json.loads(result.stdout.strip().splitlines()[-1])
    assert ft["shots"] == 0 and ft["strategy"] == "source-free"
    ev = runner.invoke(app, ["evaluate", str(out), "--json"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout.strip().splitlines()[-1])["test_accuracy"] == pytest.approx(ft["test_accuracy"])
    bad = runner.invoke(app, ["finetune", str(domains["model"]), "--data", str(domains["target"]), "--shots", "0"])
    assert bad.exit_code == 2 and "which strategy 'full' cannot do" in " ".join(bad.stderr.split())


def test_compare_has_a_zero_labels_column_and_a_source_only_baseline(domains, tmp_path):
    from transferlab.compare import CompareConfig, run_comparison

    config = CompareConfig(pretrained=str(domains["model"]), data=str(domains["target"]), unlabeled_data="train",
                           strategies=["linear-probe", "adabn", "source-free"], shots=[0, 3], seeds=2,
                           train={"epochs": 2})
    result = run_comparison(config, tmp_path / "cmp")
    assert result.failed == 0
    cells = {(c["strategy"], c["shots"]): c for c in result.summary["cells"]}
    # 0 labels: only what learns without labels, against source-only; scratch and linear-probe cannot run
    assert {s for s, k in cells if k == 0} == {"source-only", "adabn", "source-free"}
    assert cells[("source-only", 0)]["verdict"] == "baseline"
    for name in ("adabn", "source-free"):
        zero = cells[(name, 0)]
        assert zero["verdict_baseline"] == "source-only" and zero["delta_vs_scratch"] is None
        assert zero["verdict"] in ("helps", "hurts", "no-difference") and zero["delta_vs_source_only"] is not None
    # K labels: the verdict is against scratch, and against source-only beside it
    three = cells[("source-free", 3)]
    assert three["verdict_baseline"] == "scratch" and three["verdict_vs_source_only"] in ("helps", "hurts", "no-difference")
    assert cells[("scratch", 3)]["verdict"] == "baseline" and ("scratch", 0) not in cells
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert "vs source-only" in page and "vs scratch" in page


def test_compare_refuses_zero_labels_without_unlabeled_data(domains, tmp_path):
    result = runner.invoke(app, ["compare", str(domains["model"]), "--data", str(domains["target"]), "--shots", "0,5",
                                 "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "--shots 0 compares strategies that learn without target labels" in " ".join(result.stderr.split())
    result = runner.invoke(app, ["compare", str(domains["model"]), "--data", str(domains["target"]), "--strategies",
                                 "full", "--unlabeled-data", "train", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "none of them is in the comparison" in " ".join(result.stderr.split())
    result = runner.invoke(app, ["compare", str(domains["model"]), "--data", str(domains["target"]), "--strategies",
                                 "dann", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "learn from unlabeled target data" in " ".join(result.stderr.split())


def test_advise_knows_an_unlabeled_pool(domains):
    from transferlab.analysis import advise
    from transferlab.analysis.adaptation_advice import adaptation_choice

    zero = advise(str(domains["model"]), str(domains["target"]), shots=0, unlabeled_data="train")
    assert zero.shots == 0 and zero.strategy in ("self-training", "adabn")  # source data and a matching head exist
    assert "--shots 0 --unlabeled-data train" in zero.command and "LogME needs labels" in " ".join(zero.notes)
    assert zero.domain_gap is not None
    few = advise(str(domains["model"]), str(domains["target"]), shots=5, unlabeled_data="train")
    assert any("an unlabeled pool is given" in n and "--unlabeled-data train" in n for n in few.notes)
    assert adaptation_choice(has_source=False, head_matches=True, level="large")[0] == "source-free"
    with pytest.raises(ConfigError, match="something must name the target's classes"):
        adaptation_choice(has_source=False, head_matches=False, level="large")
    with pytest.raises(ConfigError, match="--shots 0 asks how to adapt without target labels; pass --unlabeled-data"):
        advise(str(domains["model"]), str(domains["target"]), shots=0)
    result = runner.invoke(app, ["advise", str(domains["model"]), "--data", str(domains["target"]), "--shots", "0",
                                 "--unlabeled-data", "train", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["shots"] == 0
