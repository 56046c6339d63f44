"""Text inference: length-sorted batches and the one-call encoder give the same outputs; metrics match torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab.engine.evaluate import classification_metrics, macro_f1, predict_logits, regression_metrics
from transferlab.engine.feature_cache import prefix_features


def test_macro_f1_and_regression_metrics_equal_torchmetrics():
    from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score
    from torchmetrics.functional.classification import multiclass_f1_score

    gen = torch.Generator().manual_seed(0)
    for trial in range(100):
        n, c = int(torch.randint(1, 40, (1,), generator=gen)), int(torch.randint(2, 8, (1,), generator=gen))
        y, pred = torch.randint(0, c, (n,), generator=gen), torch.randint(0, c, (n,), generator=gen)
        if trial % 4 == 0:
            pred = y.clone()
        assert macro_f1(pred, y, c) == pytest.approx(float(multiclass_f1_score(pred, y, num_classes=c, average="macro")),
                                                     abs=1e-6)
    x, y = torch.randn(30, 3), torch.randn(30)
    net = torch.nn.Linear(3, 1)
    got = regression_metrics(net, x, y)
    with torch.no_grad():
        p = net(x).squeeze(1)
    assert got["mse"] == pytest.approx(float(mean_squared_error(p, y)), rel=1e-5)
    assert got["mae"] == pytest.approx(float(mean_absolute_error(p, y)), rel=1e-5)
    assert got["r2"] == pytest.approx(float(r2_score(p, y)), rel=1e-5)


@pytest.fixture(scope="module")
def tiny_text(tiny_bert_path):
    from transferlab.data.task import InputSpec
    from transferlab.models import create_backbone
    from transferlab.models.head import HeadSpec, TransferModel

    torch.manual_seed(0)
    backbone = create_backbone("hf", InputSpec("text", ()), path=str(tiny_bert_path)).eval()
    rng = np.random.default_rng(0)
    words = "the team won a match soup was delicious laptop needs an update phone battery died striker goal".split()
    texts = np.array([" ".join(rng.choice(words, size=int(rng.integers(1, 40)))) for _ in range(70)], dtype=object)
    return TransferModel(backbone, HeadSpec(num_outputs=3)).eval(), texts


def test_sorted_batches_return_rows_in_order_and_equal_one_by_one(tiny_text):
    model, texts = tiny_text
    x = model.backbone.prepare_inputs(texts)
    together = predict_logits(model, x)
    with torch.inference_mode():
        alone = torch.cat([model(model.backbone.prepare_inputs(texts[i : i + 1])) for i in range(len(texts))])
    assert torch.allclose(together, alone, atol=1e-5)
    y = together.argmax(1)
    assert classification_metrics(model, x, y, 3)["accuracy"] == 1.0


def test_one_call_encoder_equals_the_blocks(tiny_text):
    model, texts = tiny_text
    backbone = model.backbone
    x = backbone.prepare_inputs(texts[:16])
    with torch.inference_mode():
        fast = backbone.features(x)  # the whole encoder in one call (no gradients)
        blocks = backbone.features_from(x[..., : int(x[:, 1].sum(1).max())], 0)  # block by block
    assert torch.allclose(fast, blocks, atol=1e-5)
    cached = prefix_features(backbone, len(backbone.block_names), texts[:16])
    assert torch.allclose(cached, fast, atol=1e-5)
    with torch.enable_grad():  # training runs block by block (frozen prefixes, LoRA, gradients)
        assert torch.allclose(backbone.features(x), fast, atol=1e-5)
