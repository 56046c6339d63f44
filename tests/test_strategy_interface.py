"""The strategy interface beyond trainable sets: the loss hook, the unlabeled stream, safe caching, per-run state."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import make_split, make_task
from transferlab.engine import TrainConfig, fit, seed_everything
from transferlab.engine.run import train_run, unlabeled_rows
from transferlab.errors import ConfigError
from transferlab.models import TransferModel, create_backbone
from transferlab.strategies import Strategy, create_strategy

CFG = dict(epochs=3, batch_size=16, lr=1e-2, restore_best=False, seed=4)


def _pretrained(task, name="mlp"):
    torch.manual_seed(123)
    return create_backbone(name, task.input_spec)


def _same(a: TransferModel, b: TransferModel) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


class Smoothing(Strategy):
    """Full fine-tuning with label smoothing, written as a loss hook (not registered: tests only)."""

    name = "smoothing-test"

    def __init__(self, config=None, smoothing: float = 0.2) -> None:
        super().__init__(config)
        self.smoothing = smoothing

    def for_run(self):
        return Smoothing(copy.deepcopy(self.config), self.smoothing)

    def loss(self, logits, targets, batch, cfg):
        seen.append((tuple(logits.shape), tuple(targets.shape), tuple(batch.x.shape), batch.step, batch.epoch,
                     cfg.batch_size, batch.index.tolist()))
        return F.cross_entropy(logits, targets, label_smoothing=self.smoothing)


seen: list = []


def test_the_loss_hook_sees_logits_targets_batch_and_config(tiny_split):
    seen.clear()
    pretrained = _pretrained(tiny_split.task)
    smoothed, run, _ = train_run(copy.deepcopy(pretrained), tiny_split, Smoothing(), TrainConfig(**CFG))
    steps_per_epoch = -(-len(tiny_split.y_train) // 16)
    assert len(seen) == run.steps == 3 * steps_per_epoch
    assert seen[0][0] == (16, 3) and seen[0][1] == (16,) and seen[0][2] == (16, 1, 8, 8) and seen[0][5] == 16
    assert [s[3] for s in seen] == list(range(run.steps))  # the step over the whole run
    assert [s[4] for s in seen] == [e for e in (1, 2, 3) for _ in range(steps_per_epoch)]
    assert sorted(i for s in seen[:steps_per_epoch] for i in s[6]) == list(range(len(tiny_split.y_train)))
    # label smoothing 0 is the plain criterion: the same weights as `full`; 0.2 trains differently
    plain, _, _ = train_run(copy.deepcopy(pretrained), tiny_split, Smoothing(smoothing=0.0), TrainConfig(**CFG))
    full, _, _ = train_run(copy.deepcopy(pretrained), tiny_split, create_strategy("full"), TrainConfig(**CFG))
    assert _same(plain, full) and not _same(smoothed, full)


class Features(Strategy):
    name = "features-test"
    needs_features = True

    def loss(self, logits, targets, batch, cfg):
        assert batch.features.shape == (len(targets), batch.model.backbone.feature_dim)
        torch.testing.assert_close(batch.model.head(batch.features), logits)
        checked.append(1)
        return batch.criterion(logits, targets) + 1e-3 * batch.features.pow(2).mean()


checked: list = []


@pytest.mark.parametrize("strategy_cls", [Features])
def test_the_loss_hook_gets_the_backbone_features(strategy_cls, tiny_split):
    checked.clear()
    train_run(_pretrained(tiny_split.task, "cnn"), tiny_split, strategy_cls(), TrainConfig(**CFG))
    assert checked


class EntropyMin(Strategy):
    """Entropy minimisation on unlabeled batches (a semi-supervised loss), head only trains."""

    name = "entropy-test"
    needs_unlabeled = True

    def frozen_blocks(self, backbone):
        return backbone.block_names[:1]

    def loss(self, logits, targets, batch, cfg):
        drawn.append(batch.unlabeled.clone())
        assert batch.unlabeled_logits.shape == logits.shape and batch.unlabeled_features is not None
        p = batch.unlabeled_logits.softmax(1)
        return batch.criterion(logits, targets) - 0.5 * (p * p.clamp_min(1e-8).log()).sum(1).mean()


drawn: list = []


@pytest.fixture
def few_split(tiny_task):
    return make_split(tiny_task, shots=8)  # 8 labelled rows per class: the rest of the pool is unlabeled


@pytest.mark.parametrize("cache", [False, True])
def test_unlabeled_batches_come_from_the_pool_rows_no_run_uses(cache, few_split):
    tiny_split = few_split
    drawn.clear()
    run = train_run(_pretrained(tiny_split.task), tiny_split, EntropyMin(), TrainConfig(**CFG), cache=cache)[1]
    assert run.cached_blocks == (1 if cache else 0)
    allowed = unlabeled_rows(tiny_split)
    assert len(allowed) == len(tiny_split.task.x_pool) - len(tiny_split.x_train) - len(tiny_split.x_val) > 0
    if not cache:  # raw inputs: every unlabeled row is one of the allowed pool rows, never a test row
        rows = {r.numpy().tobytes() for batch in drawn for r in batch}
        assert rows <= {r.astype(np.float32).tobytes() for r in allowed}
        assert not rows & {r.astype(np.float32).tobytes() for r in tiny_split.task.x_test}
    assert len(drawn) == run.steps and all(len(b) in (16, len(tiny_split.y_train) % 16) for b in drawn)


def test_unlabeled_inputs_can_be_given_and_change_the_result(few_split):
    tiny_split = few_split
    pretrained = _pretrained(tiny_split.task)
    runs = [train_run(copy.deepcopy(pretrained), tiny_split, EntropyMin(), TrainConfig(**CFG), unlabeled=u)[0]
            for u in (None, None, tiny_split.task.x_pool[:7])]
    assert _same(runs[0], runs[1]) and not _same(runs[0], runs[2])


def test_a_strategy_needing_unlabeled_inputs_without_any_is_refused(tiny_task):
    split = make_split(tiny_task)  # every pool row is a training or validation row
    with pytest.raises(ConfigError, match="strategy 'entropy-test' trains on unlabeled inputs too, and there are none"):
        train_run(_pretrained(tiny_task), split, EntropyMin(), TrainConfig(**CFG))


def test_the_unlabeled_stream_resumes_exactly(tmp_path):
    task = make_task()
    split = make_split(task, shots=8)
    cfg = TrainConfig(epochs=4, batch_size=8, lr=5e-3, seed=1, restore_best=False)
    x_un = torch.from_numpy(unlabeled_rows(split))

    def run(path=None, stop=None, resume=False):
        seed_everything(cfg.seed)
        strategy = EntropyMin()
        model = TransferModel(_pretrained(task), strategy.head_spec(3))
        strategy.prepare(model)
        count = {"n": 0}

        def on_step(step, per_epoch):
            count["n"] += 1
            if count["n"] == stop:
                raise KeyboardInterrupt

        tensors = [torch.from_numpy(a) for a in (split.x_train, split.y_train, split.x_val, split.y_val)]
        fit(model, strategy, *tensors, cfg, on_step=on_step, checkpoint=path, checkpoint_every=2, resume=resume,
            x_unlabeled=x_un)
        return model

    reference = run()
    path = tmp_path / "c.pt"
    with pytest.raises(KeyboardInterrupt):
        run(path, stop=7)
    assert _same(reference, run(path, resume=True))


class LateUnfreeze(Strategy):
    """Declares every block frozen for the whole run, then unfreezes the last one at epoch 2: a lie."""

    name = "late-test"

    def frozen_blocks(self, backbone):
        return backbone.block_names

    def frozen_throughout(self, backbone):
        return backbone.block_names

    def on_epoch_start(self, model, epoch, epochs):
        if epoch == 2:
            for p in model.backbone.blocks[model.backbone.block_names[-1]].parameters():
                p.requires_grad_(True)


class Unfreezes(LateUnfreeze):
    """The same schedule without the false declaration: the default derives that nothing is cacheable."""

    name = "unfreezes-test"
    frozen_throughout = Strategy.frozen_throughout


def test_caching_is_derived_from_what_stays_frozen_and_verified(tiny_split):
    with pytest.raises(ConfigError, match=r"strategy 'late-test' made block 'fc1' trainable at epoch 2, but declared "
                                          r"it frozen for the whole run"):
        train_run(_pretrained(tiny_split.task), tiny_split, LateUnfreeze(), TrainConfig(**CFG))
    model, run, _ = train_run(_pretrained(tiny_split.task), tiny_split, Unfreezes(), TrainConfig(**CFG))
    assert run.cached_blocks == 0 and any(n.startswith("backbone.blocks.fc1.") for n in run.trained_parameters)
    assert train_run(_pretrained(tiny_split.task, "cnn"), tiny_split, create_strategy("lp-ft"),
                     TrainConfig(**CFG))[1].cached_blocks == 0
    assert train_run(_pretrained(tiny_split.task, "cnn"), tiny_split, create_strategy("partial", freeze=2),
                     TrainConfig(**CFG))[1].cached_blocks == 2


@pytest.mark.parametrize("name, options", [("lora", {"rank": 2}), ("l2-sp", {}), ("lp-ft", {}),
                                           ("gradual-unfreeze", {"every": 1})])
def test_one_instance_runs_many_times_with_the_same_result(name, options, tiny_split):
    strategy = create_strategy(name, **options)
    before = copy.deepcopy(vars(strategy))
    mlp, cnn = _pretrained(tiny_split.task), _pretrained(tiny_split.task, "cnn")
    first = train_run(copy.deepcopy(mlp), tiny_split, strategy, TrainConfig(**CFG))
    other = train_run(copy.deepcopy(cnn), tiny_split, strategy, TrainConfig(**CFG))  # another backbone in between
    again = train_run(copy.deepcopy(mlp), tiny_split, strategy, TrainConfig(**CFG))
    assert _same(first[0], again[0]) and first[1].trained_parameters == again[1].trained_parameters
    assert vars(strategy).keys() == before.keys() and strategy.config == before["config"]  # the instance is unchanged
    fresh = train_run(copy.deepcopy(cnn), tiny_split, create_strategy(name, **options), TrainConfig(**CFG))
    assert _same(other[0], fresh[0]) and other[1].trained_parameters == fresh[1].trained_parameters


class Discriminator(Strategy):
    """Adds a training-only module (as a domain discriminator would) and a loss term that trains it."""

    name = "aux-test"
    needs_features = True

    def prepare(self, model):
        super().prepare(model)
        model.auxiliary["critic"] = nn.Linear(model.backbone.feature_dim, 1)

    def loss(self, logits, targets, batch, cfg):
        return batch.criterion(logits, targets) + 0.1 * batch.model.auxiliary["critic"](batch.features).pow(2).mean()


def test_auxiliary_modules_train_but_are_not_saved(tiny_split, tmp_path):
    from transferlab.artifacts import load_model_folder, save_model_folder

    model, run, _ = train_run(_pretrained(tiny_split.task), tiny_split, Discriminator(), TrainConfig(**CFG))
    assert {"auxiliary.critic.weight", "auxiliary.critic.bias"} <= set(run.trained_parameters)
    save_model_folder(tmp_path / "m", backbone=model.backbone, head=model.head, head_spec=model.head_spec,
                      info={"label_names": ["a", "b", "c"]})
    loaded = load_model_folder(tmp_path / "m")
    assert not any(k.startswith("auxiliary") for k in loaded.model.state_dict())
    x = torch.from_numpy(tiny_split.x_test)
    torch.testing.assert_close(loaded.model(x), model(x))
