"""transferlab's `setfit` follows the SetFit library's recipe: its pair sampler, schedule and head."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from transferlab.errors import ConfigError
from transferlab.strategies import create_strategy
from transferlab.strategies.setfit import contrastive_pairs, warmup_linear


def test_oversampling_pairs_are_the_library_cycle_over_every_distinct_pair():
    y = np.array([0, 0, 0, 1, 1, 2])
    pairs = contrastive_pairs(y, iterations=3, max_pairs=None, rng=np.random.default_rng(0), sampling="oversampling")
    n = len(y)
    assert len(pairs) == 2 * 3 * n and pairs[:, 2].sum() == 3 * n  # as many positives as negatives
    assert all((y[i] == y[j]) == bool(s) and i <= j for i, j, s in pairs)
    # distinct positives (a row with itself included): 6 + 3 + 1 = 10 < 18 wanted, so every one appears
    positives = {(int(i), int(j)) for i, j, s in pairs if s}
    assert positives == {(i, j) for i in range(n) for j in range(i, n) if y[i] == y[j]}
    assert {(i, i) for i in range(n)} <= positives
    # distinct negatives: 11 ≥ ... cycled too; each appears once or twice (18 = 11 + 7)
    negatives = [(int(i), int(j)) for i, j, s in pairs if not s]
    counts = np.unique(np.array(negatives), axis=0, return_counts=True)[1]
    assert len(counts) == 11 and set(counts) == {1, 2}
    capped = contrastive_pairs(y, iterations=3, max_pairs=7, rng=np.random.default_rng(0), sampling="oversampling")
    assert len(capped) == 7
    again = contrastive_pairs(y, iterations=3, max_pairs=None, rng=np.random.default_rng(0), sampling="oversampling")
    assert np.array_equal(pairs, again)  # the run's seed decides the order


def test_pair_warmup_then_linear_decay_like_transformers():
    assert [warmup_linear(s, 10, 0.1) for s in (0, 1, 5, 9)] == [0.0, 1.0, 5 / 9, 1 / 9]
    assert warmup_linear(0, 10, 0.0) == warmup_linear(9, 10, 0.0) == 1.0  # 0: a constant rate
    assert warmup_linear(1, 25, 0.1) == pytest.approx(1 / 3)  # ceil(2.5) = 3 warm-up steps


@pytest.mark.parametrize("options, message", [
    ({"pair_sampling": "pairs"}, r"--pair-sampling 'pairs' is not one of oversampling\|random; oversampling is"),
    ({"head": "svm"}, r"--head 'svm' is not one of logistic\|linear; logistic is the SetFit library's head"),
    ({"pair_warmup": 1.0}, r"--pair-warmup is a share of the pair steps, 0 ≤ share < 1; got 1.0"),
    ({"pair_weight_decay": -0.1}, r"--pair-weight-decay must be a number ≥ 0 \(0: off\); got -0.1"),
    ({"pair_max_grad_norm": math.inf}, r"--pair-max-grad-norm must be a number ≥ 0 \(0: off\); got inf"),
    ({"max_pairs": 0}, r"--max-pairs must be a whole number ≥ 1; got 0"),
])
def test_setfit_option_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        create_strategy("setfit", **options)


def test_cli_refuses_an_unknown_setfit_head():
    from typer.testing import CliRunner

    from transferlab.cli import app

    result = CliRunner().invoke(app, ["finetune", "minilm", "--data", "digits", "--strategy", "setfit", "--head", "svm"])
    assert result.exit_code == 2
    output = " ".join(result.output.replace("│", " ").split())
    assert "Invalid value for '--head'" in output and "'svm' is not one of 'logistic', 'linear'" in output


def _setfit_run(tiny_bert_path, **options):
    from conftest import make_text_task
    from transferlab.data import split_task
    from transferlab.data.task import InputSpec
    from transferlab.engine import TrainConfig
    from transferlab.engine.run import train_run
    from transferlab.models import create_backbone

    split = split_task(make_text_task(), shots=4, seed=0)
    backbone = create_backbone("hf", InputSpec("text", ()), path=str(tiny_bert_path))
    model, result, metrics = train_run(backbone, split, create_strategy("setfit", iterations=1, **options),
                                       TrainConfig(epochs=3, seed=0))
    return split, model, result


def test_logistic_head_predicts_as_sklearn_logistic_regression_on_the_tuned_embeddings(tiny_bert_path):
    from sklearn.linear_model import LogisticRegression

    split, model, result = _setfit_run(tiny_bert_path)
    model.eval()
    backbone = model.backbone
    with torch.inference_mode():
        train = backbone.features(backbone.prepare_inputs(split.x_train)).double().numpy()
        test_inputs = backbone.prepare_inputs(split.x_test)
        test = backbone.features(test_inputs).double().numpy()
        ours = torch.softmax(model(test_inputs).double(), dim=1).numpy()
    clf = LogisticRegression(random_state=0).fit(train, split.y_train)
    assert np.abs(ours - clf.predict_proba(test)).max() < 1e-5  # the engine's head phase left it as fitted
    assert result.val_metric == "accuracy" and 0 <= result.val_value <= 1


def test_linear_head_trains_by_gradient_instead(tiny_bert_path):
    split, model, _ = _setfit_run(tiny_bert_path, head="linear", pair_sampling="random", max_pairs=8)
    from sklearn.linear_model import LogisticRegression

    backbone = model.backbone
    with torch.inference_mode():
        train = backbone.features(backbone.prepare_inputs(split.x_train)).double().numpy()
    clf = LogisticRegression(random_state=0).fit(train, split.y_train)
    assert not np.allclose(model.head.out.weight.detach().double().numpy(), clf.coef_, atol=1e-3)


def test_logistic_head_needs_a_single_linear_layer(tiny_bert_path):
    from transferlab.data.task import InputSpec
    from transferlab.models import create_backbone
    from transferlab.models.head import HeadSpec, TransferModel
    from transferlab.strategies.setfit import fit_logistic_head

    backbone = create_backbone("hf", InputSpec("text", ()), path=str(tiny_bert_path))
    model = TransferModel(backbone, HeadSpec(num_outputs=2, hidden=[4]))
    x = backbone.prepare_inputs(["a question", "another one"])
    with pytest.raises(ConfigError, match="setfit's logistic head is one linear layer; .*--head linear"):
        fit_logistic_head(model, x, torch.tensor([0, 1]), seed=0)
