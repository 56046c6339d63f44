"""Attributions: which parts of an input a fine-tuned model's prediction rests on (captum).

- Images and feature vectors: integrated gradients (Sundararajan, Taly & Yan, ICML 2017) from an
  all-zero baseline (a blank image: MNIST-style digits are white on black), or plain saliency, the
  input gradient's magnitude (Simonyan, Vedaldi & Zisserman 2014).
- Text: integrated gradients on the output of the embedding layer (captum's LayerIntegratedGradients),
  from a baseline text of padding tokens with the same special tokens ([CLS], [SEP]) and length;
  each token's score is the sum over its embedding. Saliency is the norm of the gradient at each
  token's embedding.
Attributions explain the class the model predicted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError
from ..models.head import TransferModel

METHODS = ("integrated-gradients", "saliency")
Method = Literal["integrated-gradients", "saliency"]


@dataclass
class Attribution:
    """One example's attribution: an (H, W) map for images, per-token scores for text, per-feature for vectors."""

    index: int  # row of the split it was drawn from
    label: str
    predicted: str
    probability: float
    kind: str
    image: np.ndarray | None = None  # (C, H, W) input in [0, 1]
    heat: np.ndarray | None = None  # (H, W), summed over channels; or (D,) for vectors
    tokens: list[str] | None = None
    scores: list[float] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "label": self.label, "predicted": self.predicted,
                               "probability": self.probability, "kind": self.kind}
        if self.tokens is not None:
            out["tokens"] = [[t, s] for t, s in zip(self.tokens, self.scores or [])]
        elif self.heat is not None and self.kind == "vector":
            top = np.argsort(-np.abs(self.heat))[:10]
            out["top_features"] = [[int(i), float(self.heat[i])] for i in top]
        return out


def _require_captum():
    try:
        import captum.attr as attr
    except ImportError:
        raise ConfigError("attributions need captum: pip install 'transferlab[explain]'") from None
    return attr


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"--method {method!r} is not one of {list(METHODS)}; integrated-gradients is the default")


def attribute(model: TransferModel, x: np.ndarray, y: np.ndarray, rows: np.ndarray, label_names: list[str], *,
              method: Method = "integrated-gradients", steps: int = 50) -> list[Attribution]:
    """Attributions of the predicted class for examples `x[rows]` (true labels `y[rows]`)."""
    check_method(method)
    attr = _require_captum()
    model.eval()
    backbone = model.backbone
    xt = backbone.prepare_inputs(x[rows])
    with torch.no_grad():
        probs = model(xt).softmax(1)  # (n, classes)
    predicted = probs.argmax(1)
    text = backbone.input_spec.kind == "text"
    if text:
        maps = _text_attributions(attr, model, xt, predicted, method, steps)
    elif method == "saliency":
        maps = attr.Saliency(model).attribute(xt.clone().requires_grad_(), target=predicted, abs=True).detach()
    else:
        maps = attr.IntegratedGradients(model).attribute(xt, baselines=torch.zeros_like(xt), target=predicted,
                                                          n_steps=steps, internal_batch_size=steps).detach()
    out = []
    for i, row in enumerate(rows):
        a = Attribution(index=int(row), label=label_names[int(y[row])], predicted=label_names[int(predicted[i])],
                        probability=float(probs[i, predicted[i]]), kind=backbone.input_spec.kind)
        if text:
            ids, mask = xt[i, 0], xt[i, 1].bool()
            a.tokens = backbone.tokenizer.convert_ids_to_tokens(ids[mask].tolist())
            a.scores = [float(v) for v in maps[i][mask]]
        elif backbone.input_spec.kind == "image":
            a.image, a.heat = np.asarray(x[row], dtype=np.float32), maps[i].sum(0).numpy()  # (C,H,W) -> (H,W)
        else:
            a.heat = maps[i].reshape(-1).numpy()
        out.append(a)
    return out


def _text_attributions(attr, model: TransferModel, packed: torch.Tensor, target: torch.Tensor, method: str,
                       steps: int) -> torch.Tensor:
    """(n, L) token scores from the embedding layer's output."""
    backbone = model.backbone
    layer = backbone.blocks["embeddings"].embeddings  # the encoder's own embedding module: (B, L, H) out
    if method == "saliency":
        grads = attr.LayerGradientXActivation(model, layer, multiply_by_inputs=False).attribute(packed, target=target)
        return grads.detach().norm(dim=-1)  # (n, L)
    special = torch.tensor(sorted(backbone.tokenizer.all_special_ids))
    pad = backbone.tokenizer.pad_token_id or 0
    ids = packed[:, 0]
    baseline = packed.clone()
    baseline[:, 0] = torch.where(torch.isin(ids, special), ids, torch.full_like(ids, pad))
    scores = attr.LayerIntegratedGradients(model, layer).attribute(packed, baselines=baseline, target=target,
                                                                   n_steps=steps, internal_batch_size=steps)
    return scores.detach().sum(-1)  # (n, L)
