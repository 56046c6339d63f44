import pytest
import torch

from transferlab.api import train_run
from transferlab.engine import TrainConfig, fit
from transferlab.engine.runtime import resolve_threads
from transferlab.errors import ConfigError
from transferlab.models import HeadSpec, TransferModel, create_backbone
from transferlab.strategies import create_strategy


def _model(task):
    torch.manual_seed(0)
    return create_backbone("mlp", task.input_spec, hidden=[16], dropout=0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"optimizer": "rmsprop"}, r"--optimizer 'rmsprop' is not one of \['adam', 'adamw', 'sgd'\]"),
        ({"schedule": "step"}, r"--schedule 'step' is not one of \['none', 'cosine', 'onecycle'\]"),
        ({"loss": "hinge"}, r"--loss 'hinge' is not one of \['cross-entropy', 'mse'\]"),
        ({"epochs": 0}, "--epochs must be ≥ 1; got 0"),
        ({"batch_size": 0}, "--batch-size must be ≥ 1; got 0"),
        ({"lr": -1.0}, "--lr must be a positive number; got -1.0"),
        ({"patience": 0}, "--patience must be ≥ 1; got 0"),
        ({"threads": 0}, "--threads must be a whole number ≥ 1; got 0"),
    ],
)
def test_train_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_THREADS", "2")
    assert resolve_threads(None) == 2
    monkeypatch.setenv("TRANSFERLAB_THREADS", "many")
    with pytest.raises(ConfigError, match="TRANSFERLAB_THREADS must be a whole number ≥ 1; got 'many'"):
        resolve_threads(None)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("schedule", ["none", "cosine", "onecycle"])
def test_optimizers_and_schedules_learn_the_tiny_task(optimizer, schedule, tiny_split):
    cfg = TrainConfig(epochs=15, lr=0.05 if optimizer == "sgd" else 5e-3, optimizer=optimizer, schedule=schedule)
    _, run, metrics = train_run(_model(tiny_split.task), tiny_split, create_strategy("full"), cfg)
    assert metrics["accuracy"] >= 0.9  # the tiny task is linearly separable
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]


def test_mse_loss_learns(tiny_split):
    _, _, metrics = train_run(_model(tiny_split.task), tiny_split, create_strategy("full"),
                              TrainConfig(epochs=20, lr=1e-2, loss="mse"))
    assert metrics["accuracy"] >= 0.9


def test_best_validation_epoch_is_restored_and_patience_stops(tiny_split):
    cfg = TrainConfig(epochs=50, lr=5e-2, patience=2)
    model, run, _ = train_run(_model(tiny_split.task), tiny_split, create_strategy("full"), cfg)
    best = max(h["val_accuracy"] for h in run.history)
    assert run.val_accuracy == best
    every = cfg.resolved_eval_every(50)
    assert every == 2  # 50 epochs, at most 25 validation passes
    assert [h["epoch"] for h in run.history] == list(range(every, run.epochs + 1, every))
    assert run.epochs - run.best_epoch == 2 * every  # patience counts validation passes
    assert run.epochs < 50  # the tiny task reaches 1.0 quickly, then nothing improves


def test_history_has_elapsed_seconds_increasing(tiny_split):
    _, run, _ = train_run(_model(tiny_split.task), tiny_split, create_strategy("full"), TrainConfig(epochs=4))
    elapsed = [h["elapsed_seconds"] for h in run.history]
    assert elapsed == sorted(elapsed) and run.train_seconds == pytest.approx(elapsed[-1])
    assert run.steps == 4 * ((len(tiny_split.y_train) + 31) // 32)


def test_auto_epochs_give_few_shot_runs_enough_steps():
    cfg = TrainConfig()
    assert cfg.resolved_epochs(10) == 200  # 1 step/epoch: capped
    assert cfg.resolved_epochs(320) == 30  # 10 steps/epoch → 300 steps
    assert cfg.resolved_epochs(100_000) == 10


def test_fit_refuses_an_empty_training_split(tiny_task):
    model = TransferModel(_model(tiny_task), HeadSpec(num_outputs=3))
    empty = torch.zeros(0, 1, 8, 8)
    with pytest.raises(ConfigError, match="the training split is empty"):
        fit(model, create_strategy("full"), empty, torch.zeros(0, dtype=torch.long), empty,
            torch.zeros(0, dtype=torch.long), TrainConfig(epochs=1))


def test_compile_option_trains(tiny_split):
    _, run, metrics = train_run(_model(tiny_split.task), tiny_split, create_strategy("full"),
                                TrainConfig(epochs=8, lr=1e-2, compile=True))
    assert metrics["accuracy"] >= 0.9 and run.config["compile"] is True


def test_validation_time_is_part_of_training_time(tiny_split):
    _, run, _ = train_run(_model(tiny_split.task), tiny_split, create_strategy("full"), TrainConfig(epochs=3))
    assert 0 < run.eval_seconds < run.train_seconds


def test_backbone_and_head_get_their_own_learning_rates(tiny_task):
    model = TransferModel(_model(tiny_task), HeadSpec(num_outputs=3))
    groups = create_strategy("full").param_groups(model, 1e-3, 2e-5)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 2e-5), ("head", 1e-3)]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    lp = create_strategy("linear-probe")
    lp.prepare(model)
    groups = lp.param_groups(model, 1e-3, 2e-5)  # created up front: frozen parameters are in a group too
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert not any(p.requires_grad for p in groups[0]["params"]) and all(p.requires_grad for p in groups[1]["params"])
    with pytest.raises(ConfigError, match="--backbone-lr must be a positive number; got 0.0"):
        TrainConfig(backbone_lr=0.0)


def test_a_non_finite_loss_stops_training_before_the_step(tiny_split, tmp_path):
    from transferlab.errors import TrainingDiverged

    model = TransferModel(_model(tiny_split.task), HeadSpec(num_outputs=3))
    strategy = create_strategy("full")
    strategy.prepare(model)
    x = torch.from_numpy(tiny_split.x_train).clone()
    x[5] = float("inf")  # one poisoned example
    with pytest.raises(TrainingDiverged, match=r"the loss is nan at epoch 1, step \d+ \(training examples .*lower --lr"):
        fit(model, strategy, x, torch.from_numpy(tiny_split.y_train), torch.from_numpy(tiny_split.x_val),
            torch.from_numpy(tiny_split.y_val), TrainConfig(epochs=3, batch_size=8), checkpoint=tmp_path / "c.pt")
    for k, v in model.state_dict().items():
        assert torch.isfinite(v.float()).all(), k  # no step was taken with the NaN loss
