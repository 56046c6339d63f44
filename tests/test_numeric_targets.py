"""Numeric targets work out of the box: standardised targets and features, undone for every use, with
reference lines (mean predictor, ridge) on the same split."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from transferlab.api import evaluate, finetune, load, predict, pretrain


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    """scikit-learn's diabetes table (442 rows, 10 raw features, targets 25–346) as a CSV, and a pretrained mlp."""
    from sklearn.datasets import load_diabetes

    root = tmp_path_factory.mktemp("diabetes")
    d = load_diabetes(scaled=False)
    path = root / "diabetes.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*d.feature_names, "label"])
        writer.writerows([*x, y] for x, y in zip(d.data, d.target))
    pre = pretrain(str(path), backbone="mlp", target="numeric", out=root / "src")  # default settings
    return {"root": root, "csv": path, "pretrain": pre, "x": d.data, "y": d.target}


@pytest.mark.parametrize("strategy", ["full", "scratch"])
def test_default_settings_reach_the_ridge_line(diabetes, strategy):
    result = finetune(diabetes["root"] / "src", str(diabetes["csv"]), strategy=strategy, target="numeric",
                      out=diabetes["root"] / strategy)
    assert result.ridge_r2 > 0.3 and abs(result.mean_predictor_r2) < 0.05  # the reference lines are sane
    assert result.test_r2 >= result.ridge_r2 - 0.05, result.to_json()
    assert result.test_mse < result.mean_predictor_mse and result.warnings == []
    keys = result.to_json()
    assert {"mean_predictor_mse", "mean_predictor_r2", "ridge_mse", "ridge_r2"} <= set(keys)
    assert "balanced_accuracy" not in keys and "majority_rate" not in keys


def test_pretrain_default_budget_converges(diabetes):
    pre = diabetes["pretrain"]
    assert pre.epochs > 5  # not the 5-epoch default of class targets
    assert pre.test_mse < pre.mean_predictor_mse and pre.test_mse <= 1.2 * pre.ridge_mse


def test_scale_is_stored_and_undone_at_evaluate_predict_and_export(diabetes):
    folder = diabetes["root"] / "full"
    if not (folder / "config.json").is_file():
        finetune(diabetes["root"] / "src", str(diabetes["csv"]), strategy="full", target="numeric", out=folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["target_scale"]["mean"] == pytest.approx(152, abs=10) and config["target_scale"]["std"] > 50
    assert len(config["preprocessing"]["feature_mean"]) == 10
    recorded = config["metrics"]["test_mse"]
    again = evaluate(folder)
    assert again.test_mse == pytest.approx(recorded, rel=1e-5) and again.test_r2 > 0.3
    rows = predict(folder, str(diabetes["csv"]))  # raw feature rows in, target units out
    values = np.array([r["value"] for r in rows])
    assert 100 < values.mean() < 200 and np.corrcoef(values, diabetes["y"])[0, 1] > 0.6
    from transferlab.export import _ExportNet

    net = _ExportNet(load(folder)).eval()
    with torch.no_grad():
        exported = net(torch.tensor(diabetes["x"], dtype=torch.float32)).squeeze(1).numpy()
    assert exported == pytest.approx(values, rel=1e-4, abs=1e-3)


def test_a_model_below_its_reference_line_is_warned_about():
    from transferlab.engine.references import metric_warnings

    assert metric_warnings({"mse": 7000.0, "mean_predictor_mse": 6000.0, "ridge_mse": 3000.0}) == [
        "test MSE 7000 is worse than predicting the training mean (MSE 6000); ridge regression reaches MSE 3000"]
    warning = metric_warnings({"accuracy": 0.841, "majority_rate": 0.866, "balanced_accuracy": 0.62},
                              ["ham", "spam"], np.array([0] * 9 + [1]))
    assert warning == ["test accuracy 0.841 is below the majority-class rate 0.866: always answering the most common "
                       "class ('ham') scores higher; balanced accuracy is 0.620"]
    assert metric_warnings({"accuracy": 0.9, "majority_rate": 0.866}) == []
