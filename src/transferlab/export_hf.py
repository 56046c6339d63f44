"""Export a text model as a Hugging Face folder that sentence-transformers and transformers load offline.

A fine-tuned text model becomes one folder with two entry points:
- `SentenceTransformer(DIR)`: the (fine-tuned) encoder with its own pooling and normalisation, as
  sentence-transformers modules (`modules.json`; the transformer in `0_Transformer/`, so the root
  `config.json` can describe the classifier);
- `AutoModelForSequenceClassification.from_pretrained(DIR)` + `AutoTokenizer`: encoder, the same
  pooling, and transferlab's head, returning logits; `id2label` holds the class names. No class built
  into transformers pools by mean and L2-normalises before its classifier. When the encoder is a BERT
  whose last LayerNorm switches an output coordinate off (all-MiniLM-L6-v2's does, and every strategy
  keeps it off: models/pinning.py), with mean pooling and normalisation, and the head is one linear
  layer or one tanh or sigmoid hidden layer (BERT's pooler), the folder is a plain
  `BertForSequenceClassification` with one layer added that does the pooling (`_plain_bert`), loaded
  without `trust_remote_code` (`_plain_plan` decides, and says why not). Otherwise the folder carries its class as
  `modeling_transferlab.py` (~60 lines, no imports beyond torch and transformers), loaded with
  `trust_remote_code=True`; its `model_type` is its own, so loading without it stops with transformers'
  request for it instead of silently building a BERT classifier with a random head.
A pretrained text backbone becomes a plain sentence-transformers folder (no classifier).

Both entry points are checked after writing: on `PARITY_INPUTS` seeded texts, embeddings and
class probabilities must equal transferlab's within `HF_TOLERANCE`, else the folder is not kept.
The card (README.md) is a `huggingface_hub.ModelCard` with the YAML metadata of artifacts/card.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .artifacts import LoadedModel
from .errors import ArtifactError, ConfigError
from .models.text import SWITCHED_OFF

HF_TOLERANCE = 1e-5  # max |difference| of embeddings and of class probabilities
PARITY_INPUTS = 100
MARKER = "transferlab.json"  # the model folder's config.json, kept for provenance; marks a folder we wrote
ENCODER = "0_Transformer"
MODEL_TYPE = "transferlab-text-classifier"
PLAIN_NOTE = "AutoModelForSequenceClassification loads this folder as a plain BertForSequenceClassification (no trust_remote_code)"
PLAIN_SCALE = 1e8  # the added layer's output scale: the residual is 1e-8 of the pooled mean
PLAIN_POOLER = 1e-4  # the pooler's input scale: tanh(x) = x to within x³/3

MODELING = '''"""A transferlab text classifier: a BERT encoder, sentence-transformers pooling, transferlab's head.

Written by transferlab's `export --format hf`. Load with
AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).
"""

from collections import OrderedDict

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


class TransferlabTextConfig(BertConfig):
    model_type = "%(model_type)s"

    def __init__(self, pooling_mode="mean", normalize=True, head_hidden=None, head_activation="relu",
                 head_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.pooling_mode = pooling_mode  # mean | cls | max, as the sentence-transformers Pooling module
        self.normalize = normalize  # L2-normalise the sentence embedding before the head
        self.head_hidden = list(head_hidden or [])
        self.head_activation = head_activation
        self.head_dropout = head_dropout


class TransferlabTextClassifier(BertPreTrainedModel):
    config_class = TransferlabTextConfig

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        layers, width = OrderedDict(), config.hidden_size
        for i, h in enumerate(config.head_hidden):
            block = [nn.Linear(width, h), ACTIVATIONS[config.head_activation]()]
            if config.head_dropout > 0:
                block.append(nn.Dropout(config.head_dropout))
            layers[f"hidden{i + 1}"] = nn.Sequential(*block)
            width = h
        layers["out"] = nn.Linear(width, config.num_labels)
        self.head = nn.Sequential(layers)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                      token_type_ids=token_type_ids).last_hidden_state  # (B, L, H)
        mask = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, L, 1)
        if self.config.pooling_mode == "cls":
            pooled = h[:, 0]
        elif self.config.pooling_mode == "max":
            pooled = h.masked_fill(mask == 0, -1e9).max(1).values
        else:
            pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.config.normalize:
            pooled = nn.functional.normalize(pooled, p=2, dim=1)
        logits = self.head(pooled)  # (B, num_labels)
        loss = None
        if labels is not None:
            if self.config.problem_type == "regression":
                loss = nn.functional.mse_loss(logits.squeeze(-1), labels.float())
            else:
                loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
'''


def _pooling(st: Any) -> tuple[str, bool]:
    """The sentence-transformers model's pooling mode and whether it L2-normalises, or an error naming them."""
    modules = [type(m).__name__ for m in st]
    pooling = st[1] if len(st) > 1 else None
    mode = pooling.get_config_dict().get("pooling_mode") if pooling is not None else None
    normalize = modules[2:] == ["Normalize"]
    if modules[0] != "Transformer" or modules[1:2] != ["Pooling"] or modules[2:] not in ([], ["Normalize"]) \
            or mode not in ("mean", "cls", "max"):
        raise ConfigError(f"--format hf exports encoders made of Transformer, Pooling (mean, cls or max) and an optional "
                          f"Normalize; this one has {modules} with pooling {mode!r} — use --format onnx instead")
    return mode, normalize


def _sample_texts(tokenizer: Any, n: int, seed: int = 0) -> list[str]:
    """`n` seeded texts of 1–40 words drawn from the tokenizer's whole-word vocabulary."""
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii()]
    vocab.sort()
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(vocab, size=int(rng.integers(1, 41)))) for _ in range(n)]


def _classifier_config(loaded: LoadedModel, hf_config: Any, mode: str, normalize: bool) -> dict[str, Any]:
    head = loaded.config["architecture"]["head"]
    numeric = loaded.config.get("target") == "numeric"
    config = hf_config.to_dict()
    for key in ("_name_or_path", "transformers_version", "architectures", "auto_map", "id2label", "label2id"):
        config.pop(key, None)
    labels = loaded.label_names if not numeric else ["value"]
    config.update({
        "model_type": MODEL_TYPE,
        "architectures": ["TransferlabTextClassifier"],
        "auto_map": {"AutoConfig": "modeling_transferlab.TransferlabTextConfig",
                     "AutoModelForSequenceClassification": "modeling_transferlab.TransferlabTextClassifier"},
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "num_labels": head["num_outputs"],
        "problem_type": "regression" if numeric else "single_label_classification",
        "pooling_mode": mode,
        "normalize": normalize,
        "head_hidden": list(head.get("hidden") or []),
        "head_activation": head.get("activation", "relu"),
        "head_dropout": float(head.get("dropout") or 0.0),
    })
    return config


def _write(folder: Path, loaded: LoadedModel) -> dict[str, Any]:
    """Write the export into `folder` (empty); return what the card needs."""
    from safetensors.torch import save_file

    backbone = loaded.backbone
    st = getattr(backbone, "_sentence_transformer", None)
    mode, normalize = _pooling(st)
    st.max_seq_length = backbone.max_length  # transferlab's token limit, recorded in sentence_bert_config.json
    classifier = loaded.model is not None
    if not classifier:
        st.save(str(folder), create_model_card=False)
        return {"mode": mode, "normalize": normalize}
    scratch = folder / ".st"
    st.save(str(scratch), create_model_card=False)
    modules = json.loads((scratch / "modules.json").read_text())
    (folder / ENCODER).mkdir()
    for item in sorted(scratch.iterdir()):
        if item.is_dir():
            shutil.move(str(item), folder / item.name)
        elif item.name in ("modules.json", "config_sentence_transformers.json"):
            shutil.move(str(item), folder / item.name)
        else:  # the Transformer module's files: config.json, weights, tokenizer, sentence_bert_config.json
            shutil.move(str(item), folder / ENCODER / item.name)
    scratch.rmdir()
    modules[0]["path"] = ENCODER
    (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    tokenizer = backbone.tokenizer
    saved_limit = tokenizer.model_max_length
    try:
        tokenizer.model_max_length = backbone.max_length  # truncation=True cuts where transferlab does
        tokenizer.save_pretrained(str(folder))
    finally:
        tokenizer.model_max_length = saved_limit
    hf = backbone._hf_model
    off, note = _plain_plan(loaded, mode, normalize)
    if off is not None:  # a plain BertForSequenceClassification reproduces it: no code in the folder
        tensors, config = _plain_bert(loaded, off)
    else:
        tensors = {f"bert.{k}": v.detach().contiguous().cpu() for k, v in hf.state_dict().items()
                   if not k.startswith("pooler.")}
        tensors |= {f"head.{k}": v.detach().contiguous().cpu() for k, v in loaded.model.head.state_dict().items()}
        config = _classifier_config(loaded, hf.config, mode, normalize)
        (folder / "modeling_transferlab.py").write_text(MODELING % {"model_type": MODEL_TYPE})
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return {"mode": mode, "normalize": normalize, "plain": off is not None, "note": note or PLAIN_NOTE}


PLAIN_ACTIVATIONS = ("tanh", "sigmoid")  # what BertPooler (dense + tanh) computes exactly; sigmoid(x) = ½ + ½·tanh(x/2)
NEEDS_CODE = "AutoModelForSequenceClassification needs trust_remote_code=True for this folder"


def _plain_plan(loaded: LoadedModel, mode: str, normalize: bool) -> tuple[int | None, str | None]:
    """(the encoder's switched-off coordinate, None) when the classifier can be a plain
    `BertForSequenceClassification` (`_plain_bert`), else (None, one line: why not, and what to do instead).

    Plain needs a BERT encoder, mean pooling with L2 normalisation, a coordinate the encoder's last
    LayerNorm switches off (weight and bias ~0: all-MiniLM-L6-v2's 127 and 223, which training keeps off,
    models/pinning.py), and a head BERT's pooler + classifier can hold: one linear layer, or one hidden
    layer of at most `hidden_size` units with tanh or sigmoid.
    """
    hf = loaded.backbone._hf_model
    head = loaded.config["architecture"]["head"]
    hidden, activation = list(head.get("hidden") or []), head.get("activation", "relu")
    width = int(hf.config.hidden_size)
    reasons, fixes = [], []
    if hf.config.model_type != "bert":
        reasons.append(f"its encoder is a {hf.config.model_type!r} model, and the exact plain form is built from "
                       "BERT's classifier")
    if mode != "mean" or not normalize:
        reasons.append(f"its encoder pools by {mode}{'' if normalize else ' without L2 normalisation'}, and the "
                       "plain form reproduces only mean pooling followed by L2 normalisation")
    if len(hidden) > 1:
        reasons.append(f"its head has {len(hidden)} hidden layers, and BertForSequenceClassification has room for "
                       "one (its pooler, dense + tanh)")
        fixes.append("train one hidden layer with --activation tanh or sigmoid")
    elif hidden and activation not in PLAIN_ACTIVATIONS:
        reasons.append(f"its head's hidden layer uses {activation}, and BertForSequenceClassification's only hidden "
                       "layer is its pooler, dense + tanh (tanh and sigmoid map onto it exactly, "
                       f"{activation} cannot)")
        fixes.append("train the head with --activation tanh or sigmoid")
    elif hidden and hidden[0] > width:
        reasons.append(f"its head's hidden layer has {hidden[0]} units, more than BERT's pooler ({width})")
        fixes.append(f"train it with --hidden {width} or fewer")
    off = loaded.backbone.switched_off_coordinates() if hf.config.model_type == "bert" else []
    if hf.config.model_type == "bert" and not off:
        reasons.append("its encoder's last LayerNorm has no output coordinate switched off (|weight|, |bias| ≤ "
                       f"{SWITCHED_OFF:g}), which the added pooling layer needs: a LayerNorm's output has one degree "
                       "of freedom fewer than the embedding")
        fixes.append("fine-tune an encoder that has one (minilm: coordinates 127 and 223, kept off by every strategy but "
                     "scratch)")
    if not reasons:
        return off[0], None
    fixes.append("load with trust_remote_code=True (modeling_transferlab.py, in the folder)")
    return None, f"{NEEDS_CODE}: {'; '.join(reasons)} — {', or '.join(fixes)}"


def _plain_bert(loaded: LoadedModel, off: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights and config of a `BertForSequenceClassification` computing head(normalise(mean of token states)).

    One encoder layer is added on top. Its attention has zero query and key weights, so every token
    attends uniformly to the valid (unmasked) tokens and its value (identity weights) is their mean m:
    exactly sentence-transformers' mean pooling. The output projection maps m by λ·Q (λ = 1e8), Q an
    isometry from the coordinates other than `off` onto the zero-mean vectors (m[off] is 0: the last
    LayerNorm switches it off), so the residual (the token's own state) is negligible and the
    LayerNorm gives √H·Q·m/‖m‖: the L2-normalised embedding e, rotated. The feed-forward part is zero.
    BERT's pooler, tanh(W_p·h₀ + b_p), then sees h₀ = √H·Q·e:
    - a one-layer head W·e + b: W_p = δ/√H·Qᵀ with δ = 1e-4, so the pooler gives δ·e to within (δ·x)³/3,
      and the classifier is W/δ, b;
    - a hidden tanh layer, W·tanh(V·e + c) + d: W_p = V·Qᵀ/√H, b_p = c (exact; rows beyond V's zero, so
      their tanh is 0), and the classifier is W (columns beyond zero), d;
    - a hidden sigmoid layer: sigmoid(x) = ½ + ½·tanh(x/2), so W_p = V·Qᵀ/(2√H), b_p = c/2, and the
      classifier is W/2 with bias d + W·½ (exact).
    """
    hf = loaded.backbone._hf_model
    hidden = int(hf.config.hidden_size)
    basis = torch.linalg.qr(torch.eye(hidden, dtype=torch.float64) - 1.0 / hidden)[0][:, : hidden - 1]  # zero-mean
    keep = [i for i in range(hidden) if i != off]
    iso = torch.zeros(hidden, hidden, dtype=torch.float64)
    iso[:, keep] = basis  # e_i (i != off) -> an orthonormal basis of the zero-mean vectors
    pool_w, pool_b, cls_w, cls_b = _pooler_and_classifier(loaded.model.head, iso.T / hidden ** 0.5)
    layer = f"bert.encoder.layer.{hf.config.num_hidden_layers}."
    zeros, eye = torch.zeros(hidden), torch.eye(hidden)
    tensors = {f"bert.{k}": v.detach().contiguous().cpu() for k, v in hf.state_dict().items()
               if not k.startswith("pooler.")}
    tensors |= {
        layer + "attention.self.query.weight": torch.zeros(hidden, hidden), layer + "attention.self.query.bias": zeros,
        layer + "attention.self.key.weight": torch.zeros(hidden, hidden), layer + "attention.self.key.bias": zeros,
        layer + "attention.self.value.weight": eye, layer + "attention.self.value.bias": zeros,
        layer + "attention.output.dense.weight": (PLAIN_SCALE * iso).float(), layer + "attention.output.dense.bias": zeros,
        layer + "attention.output.LayerNorm.weight": torch.ones(hidden), layer + "attention.output.LayerNorm.bias": zeros,
        layer + "intermediate.dense.weight": torch.zeros(int(hf.config.intermediate_size), hidden),
        layer + "intermediate.dense.bias": torch.zeros(int(hf.config.intermediate_size)),
        layer + "output.dense.weight": torch.zeros(hidden, int(hf.config.intermediate_size)),
        layer + "output.dense.bias": zeros,
        layer + "output.LayerNorm.weight": torch.ones(hidden), layer + "output.LayerNorm.bias": zeros,
        "bert.pooler.dense.weight": pool_w.float(), "bert.pooler.dense.bias": pool_b.float(),
        "classifier.weight": cls_w.float(), "classifier.bias": cls_b.float(),
    }
    tensors = {k: v.clone().contiguous() for k, v in tensors.items()}  # no two names share storage (safetensors)
    config = _classifier_config(loaded, hf.config, "mean", True)
    for key in ("auto_map", "pooling_mode", "normalize", "head_hidden", "head_activation", "head_dropout"):
        config.pop(key)
    config.update({"model_type": "bert", "architectures": ["BertForSequenceClassification"],
                   "num_hidden_layers": int(hf.config.num_hidden_layers) + 1})
    return tensors, config


def _pooler_and_classifier(head: torch.nn.Module, read: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """BERT's pooler (weight, bias) and classifier (weight, bias), float64, holding transferlab's `head` on the
    embedding e = read · h₀ (`_plain_bert`): a one-layer head through the near-linear pooler, or the head's
    hidden tanh / sigmoid layer as the pooler itself."""
    hidden = read.shape[1]
    out_w, out_b = head.out.weight.detach().double(), head.out.bias.detach().double()  # (C, K), (C,)
    if not hasattr(head, "hidden1"):
        return PLAIN_POOLER * read, torch.zeros(hidden, dtype=torch.float64), out_w / PLAIN_POOLER, out_b
    linear, sigmoid = head.hidden1[0], isinstance(head.hidden1[1], torch.nn.Sigmoid)
    v, c = linear.weight.detach().double(), linear.bias.detach().double()  # (K, H), (K,)
    k, half = v.shape[0], 0.5 if sigmoid else 1.0  # sigmoid(x) = ½ + ½·tanh(x/2)
    pool_w, pool_b = torch.zeros(hidden, hidden, dtype=torch.float64), torch.zeros(hidden, dtype=torch.float64)
    pool_w[:k], pool_b[:k] = half * v @ read, half * c  # rows beyond K: 0, so their tanh is 0
    cls_w = torch.zeros(out_w.shape[0], hidden, dtype=torch.float64)
    cls_w[:, :k] = half * out_w
    return pool_w, pool_b, cls_w, out_b + (0.5 * out_w.sum(1) if sigmoid else 0.0)


def hf_parity(loaded: LoadedModel, folder: str | Path, n: int = PARITY_INPUTS) -> dict[str, float]:
    """Max |difference| between the exported folder's outputs and transferlab's on `n` seeded texts:
    `embeddings` (SentenceTransformer(folder).encode) and, for a classifier, `probabilities`
    (AutoModelForSequenceClassification + AutoTokenizer, softmax of the logits; values for a numeric target;
    trust_remote_code only for a folder that carries its class).

    Example:
        >>> hf_parity(transferlab.load("models/sms"), "sms-hf")  # doctest: +SKIP
        {'embeddings': 1.2e-07, 'probabilities': 8.9e-08}
    """
    from sentence_transformers import SentenceTransformer

    from .engine.evaluate import predict_logits

    folder = str(folder)
    texts = _sample_texts(loaded.backbone.tokenizer, n)
    x = loaded.backbone.prepare_inputs(np.array(texts, dtype=object))
    ours = predict_logits(loaded.backbone, x).numpy()
    st = SentenceTransformer(folder, device="cpu", local_files_only=True)
    diffs = {"embeddings": float(np.abs(st.encode(texts, batch_size=32) - ours).max())}
    if loaded.model is None:
        return diffs
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    remote = "auto_map" in json.loads((Path(folder) / "config.json").read_text())  # a plain folder loads as users load it
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote)
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=remote).eval()
    logits = predict_logits(loaded.model, x)
    with torch.inference_mode():
        got = torch.cat([model(**tokenizer(texts[i : i + 32], padding=True, truncation=True, return_tensors="pt")).logits
                         for i in range(0, n, 32)])
    numeric = loaded.config.get("target") == "numeric"
    expected = logits if numeric else logits.softmax(1)
    got = got if numeric else got.softmax(1)
    diffs["probabilities"] = float((got - expected).abs().max())
    return diffs


def _card(loaded: LoadedModel, plain: bool = False, note: str | None = None) -> str:
    """The export's README.md: huggingface_hub.ModelCard with the model folder's metadata header."""
    from huggingface_hub import ModelCard, ModelCardData

    from .artifacts.card import card_body, card_metadata

    config = loaded.config
    meta = card_metadata(config, library_name="sentence-transformers", extra_tags=("sentence-transformers",))
    data = ModelCardData(**meta)
    usage = ["## Use it without transferlab", "", "```python", "from sentence_transformers import SentenceTransformer",
             'encoder = SentenceTransformer("path/to/this/folder")  # sentence embeddings', "```"]
    if loaded.model is not None and plain:
        usage[-1:] = [
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
            "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")",
            "model = AutoModelForSequenceClassification.from_pretrained(\"path/to/this/folder\")",
            "probs = model(**tokenizer([\"some text\"], padding=True, truncation=True, return_tensors=\"pt\")).logits.softmax(-1)",
            "print(model.config.id2label[int(probs.argmax())])",
            "```",
            "",
            "The classifier is a plain `BertForSequenceClassification` with one encoder layer added on top: it "
            "averages the token states (uniform attention over the valid tokens) and scales the average to unit "
            "length, as sentence-transformers pools, before the head. Its encoder is therefore not the sentence "
            "encoder alone: for embeddings use `SentenceTransformer` above.",
        ]
    elif loaded.model is not None:
        usage[-1:] = [
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
            "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\", trust_remote_code=True)",
            "model = AutoModelForSequenceClassification.from_pretrained(\"path/to/this/folder\", trust_remote_code=True)",
            "probs = model(**tokenizer([\"some text\"], padding=True, truncation=True, return_tensors=\"pt\")).logits.softmax(-1)",
            "print(model.config.id2label[int(probs.argmax())])",
            "```",
            "",
            "`trust_remote_code=True` runs `modeling_transferlab.py` from this folder (read it first): it pools the "
            "encoder's token states as sentence-transformers does (mean, then L2 normalisation) before the head, "
            "which no class built into transformers does.",
            *(["", f"Why not a plain `BertForSequenceClassification`: {note}."] if note else []),
        ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + card_body(config) + "\n" + "\n".join(usage) + "\n"
    return str(ModelCard(content))


def export_hf(loaded: LoadedModel, out: Path, *, overwrite: bool, check: bool) -> tuple[dict[str, float] | None, str | None]:
    """Write `loaded` (a text model) to the folder `out` as a Hugging Face / sentence-transformers folder.

    Returns the parity check's differences (None without `check`) and, for a classifier, one line saying
    how transformers loads it: plain (`PLAIN_NOTE`), or why it needs trust_remote_code=True and what
    would make it plain (`_plain_plan`)."""
    from .artifacts.files import atomic_folder

    if loaded.input_spec.kind != "text":
        raise ConfigError(f"--format hf exports text models (an encoder with its tokenizer); {loaded.path} takes "
                          f"{loaded.input_spec.describe()}s — use --format onnx")
    if getattr(loaded.backbone, "_sentence_transformer", None) is None:
        raise ConfigError(f"{loaded.path} has no sentence-transformers encoder to export; use --format onnx")
    if out.exists():
        if not overwrite:
            raise ArtifactError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
        if not (out.is_dir() and (out / MARKER).is_file()):
            raise ArtifactError(f"{out} exists and is not a folder written by `export --format hf` (no {MARKER}); "
                                "refusing to replace it even with --overwrite — choose another --out")
    diffs = None
    with atomic_folder(out, replace=overwrite) as tmp:
        written = _write(tmp, loaded)
        (tmp / MARKER).write_text(json.dumps(loaded.config, indent=2) + "\n")
        note = written.get("note") if loaded.model is not None else None
        (tmp / "README.md").write_text(_card(loaded, plain=written.get("plain", False),
                                             note=None if written.get("plain") else note))
        if check:
            diffs = hf_parity(loaded, tmp)
            worst = max(diffs.values())
            if not worst <= HF_TOLERANCE:
                raise ArtifactError(
                    f"the exported folder does not reproduce {loaded.path}: max |difference| {diffs} on {PARITY_INPUTS} "
                    f"texts, allowed {HF_TOLERANCE:g}; nothing was written — pass --no-check to keep it anyway"
                )
    return diffs, note
