"""Behaviour of the strategies beyond the seed's three: schedules, rates, regularisers, BatchNorm policy."""

import copy

import pytest
import torch

from transferlab.api import train_run
from transferlab.engine import TrainConfig
from transferlab.errors import ConfigError
from transferlab.models import TransferModel, create_backbone
from transferlab.strategies import create_strategy


def _model(task, strategy, name="cnn"):
    torch.manual_seed(0)
    model = TransferModel(create_backbone(name, task.input_spec), strategy.head_spec(task.num_classes))
    strategy.prepare(model)
    return model


def test_lp_ft_probes_then_fine_tunes(tiny_task):
    strategy = create_strategy("lp-ft", probe_fraction=0.5)
    model = _model(tiny_task, strategy)
    for epoch, probing in [(1, True), (2, True), (3, False), (4, False)]:
        strategy.on_epoch_start(model, epoch, 4)
        assert all(p.requires_grad != probing for p in model.backbone.parameters()), epoch
        assert strategy.frozen_blocks(model.backbone) == (model.backbone.block_names if probing else [])


def test_gradual_unfreeze_goes_from_the_head_downwards(tiny_task):
    strategy = create_strategy("gradual-unfreeze", every=2)
    model = _model(tiny_task, strategy)
    seen = []
    for epoch in range(1, 8):
        strategy.on_epoch_start(model, epoch, 7)
        seen.append([n for n, b in model.backbone.blocks.items() if all(p.requires_grad for p in b.parameters())])
    assert seen == [[], [], ["fc"], ["fc"], ["conv2", "fc"], ["conv2", "fc"], ["conv1", "conv2", "fc"]]


def test_discriminative_lr_decays_toward_the_input(tiny_task):
    strategy = create_strategy("discriminative-lr", lr_decay=0.5)
    model = _model(tiny_task, strategy)
    groups = strategy.param_groups(model, 1e-3, 1e-4)
    assert [(g["name"], g["lr"]) for g in groups] == [
        ("block:conv1", pytest.approx(2.5e-5)), ("block:conv2", pytest.approx(5e-5)), ("block:fc", pytest.approx(1e-4)),
        ("head", 1e-3)]
    with pytest.raises(ConfigError, match=r"--lr-decay must be in \(0, 1\]; got 1.5"):
        create_strategy("discriminative-lr", lr_decay=1.5)


def test_l2_sp_pulls_toward_the_pretrained_weights(tiny_split):
    strategy = create_strategy("l2-sp", alpha=1.0, beta=0.0)
    model = _model(tiny_split.task, strategy, "mlp")
    assert float(strategy.regularizer(model).detach()) == 0.0
    with torch.no_grad():
        model.backbone.blocks["fc1"][1].weight.add_(0.1)
    weight = model.backbone.blocks["fc1"][1].weight
    assert float(strategy.regularizer(model).detach()) == pytest.approx(0.5 * weight.numel() * 0.01, rel=1e-4)

    def drift(alpha):
        torch.manual_seed(0)
        pretrained = create_backbone("mlp", tiny_split.task.input_spec)
        trained, _, _ = train_run(copy.deepcopy(pretrained), tiny_split, create_strategy("l2-sp", alpha=alpha),
                                  TrainConfig(epochs=10, lr=1e-2, restore_best=False))
        return sum(float((a - b).detach().norm()) for a, b in zip(trained.backbone.parameters(), pretrained.parameters()))

    assert drift(10.0) < drift(0.0)


def test_bitfit_trains_only_biases_and_the_head(tiny_split):
    model, run, _ = train_run(_model(tiny_split.task, create_strategy("full"), "mlp").backbone, tiny_split,
                              create_strategy("bitfit"), TrainConfig(epochs=2))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"backbone.blocks.fc1.1.bias", "head.out.weight", "head.out.bias"}
    assert run.trainable_params == 128 + 128 * 3 + 3


def test_bn_freeze_keeps_statistics_and_affine_parameters(tiny_split):
    torch.manual_seed(0)
    pretrained = create_backbone("cnn", tiny_split.task.input_spec)
    bn_state = {k: v.clone() for k, v in pretrained.state_dict().items() if k.startswith("blocks.conv") and ".1." in k}  # conv blocks' BatchNorm
    model, _, _ = train_run(copy.deepcopy(pretrained), tiny_split, create_strategy("full"),
                            TrainConfig(epochs=2, bn="freeze", restore_best=False))
    after = model.backbone.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in bn_state.items())
    changed, _, _ = train_run(copy.deepcopy(pretrained), tiny_split, create_strategy("full"),
                              TrainConfig(epochs=2, restore_best=False))
    assert not all(torch.equal(v, changed.backbone.state_dict()[k]) for k, v in bn_state.items())
    with pytest.raises(ConfigError, match=r"--bn 'off' is not one of \['train', 'freeze'\]"):
        TrainConfig(bn="off")


def test_gradual_unfreeze_per_steps(tiny_task):
    strategy = create_strategy("gradual-unfreeze", every_steps=4)
    model = _model(tiny_task, strategy)
    changed = [step for step in range(14) if strategy.on_step_start(model, step)]
    assert changed == [4, 8, 12]
    assert strategy.frozen_blocks(model.backbone) == []


@pytest.mark.parametrize("name, options", [("lp-ft", {"probe_fraction": 0.5}), ("gradual-unfreeze", {"every": 2}),
                                           ("gradual-unfreeze", {"every_steps": 5})])
def test_a_checkpoint_mid_schedule_resumes_exactly(name, options, tiny_split, tmp_path):
    from transferlab.engine import fit, seed_everything

    cfg = TrainConfig(epochs=6, batch_size=8, lr=5e-3, seed=1, restore_best=False)

    def run(path=None, stop=None, resume=False):
        seed_everything(cfg.seed)
        strategy = create_strategy(name, **options)
        model = _model(tiny_split.task, strategy)
        count = {"n": 0}

        def on_step(step, per_epoch):
            count["n"] += 1
            if count["n"] == stop:
                raise KeyboardInterrupt

        tensors = [torch.from_numpy(a) for a in (tiny_split.x_train, tiny_split.y_train, tiny_split.x_val, tiny_split.y_val)]
        fit(model, strategy, *tensors, cfg, on_step=on_step, checkpoint=path, checkpoint_every=2, resume=resume)
        return model.state_dict()

    reference = run()
    path = tmp_path / "c.pt"
    with pytest.raises(KeyboardInterrupt):
        run(path, stop=23)  # mid-epoch 3: after the probe phase / with some blocks unfrozen
    resumed = run(path, resume=True)
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
