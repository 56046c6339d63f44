"""`lora`: low-rank adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"), via peft.

Every targeted Linear/Conv2d layer of the backbone keeps its pretrained weight W frozen and learns a
low-rank update ΔW = (α/r)·B·A (A: r×in, B: out×r, B starting at zero, so training starts exactly at
the pretrained model). Only A, B and the new head train: a few percent of the parameters, which is
what makes it attractive with little data or little compute. After training the update is merged into
W (peft's `merge`) and the adapter layers are removed, so saved folders hold **merged weights** with
the backbone's usual tensor names: they load, evaluate and export like any fine-tuned model, and no
adapter or base reference is needed.

The adapters train at their own rate, `adapter_lr` (default 1e-3): B starts at zero, so the update
needs larger steps than full fine-tuning of a transformer (2e-5) — the LoRA paper and peft's examples
use 1e-4 to 1e-3 for encoders of this size.

Targets: the attention projections (query, key, value) of text encoders; every Linear and Conv2d layer
of other backbones — or the layer names given in `targets`. Blocks without a targeted layer stay frozen
(and their outputs are cached when they lead the backbone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..models.backbone import Backbone
from ..models.head import TransferModel
from .base import Strategy, auxiliary_groups, freeze, register_strategy

TEXT_TARGETS = ("query", "key", "value")


@dataclass
class LoRAConfig:
    rank: int = field(default=8, metadata={"help": "rank r of the low-rank update"})
    alpha: float = field(default=16.0, metadata={"help": "scale α (the update is scaled by α/r)"})
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the adapter's input"})
    targets: list[str] | None = field(
        default=None, metadata={"help": "layer names to adapt (default: attention q/k/v for text, else all Linear/Conv2d)"}
    )

    adapter_lr: float = field(default=1e-3, metadata={"help": "learning rate of the adapters (the head keeps --lr)"})

    def __post_init__(self) -> None:
        if not self.adapter_lr > 0:
            raise ConfigError(f"--adapter-lr must be a positive number; got {self.adapter_lr}")
        if int(self.rank) != self.rank or self.rank < 1:
            raise ConfigError(f"--rank must be a whole number ≥ 1; got {self.rank}")
        if self.alpha <= 0:
            raise ConfigError(f"--alpha must be positive; got {self.alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"--lora-dropout must be in [0, 1); got {self.lora_dropout}")


def _targets(backbone: Backbone, names: list[str] | None) -> list[str]:
    """Full module names (relative to the backbone) of the layers to adapt."""
    # Grouped (depthwise) convolutions are left out: peft adapts them only when the rank divides the
    # groups, and cannot merge them afterwards (EfficientNet's depthwise layers have 32…1152 groups).
    layers = {n: m for n, m in backbone.named_modules()
              if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)}
    if names:
        chosen = [n for n in layers if any(n == t or n.endswith("." + t) for t in names)]
        if not chosen:
            raise ConfigError(f"--targets {names} match no Linear/Conv2d layer; layers are {sorted(layers)[:12]}…")
        return chosen
    if backbone.input_spec.kind == "text":
        return [n for n in layers if n.rsplit(".", 1)[-1] in TEXT_TARGETS]
    return list(layers)


@register_strategy("lora", order=50)
class LoRA(Strategy):
    """Low-rank adapters on the backbone's layers (peft); merged into the weights after training.

    Helps when the pretrained backbone is large relative to the labels: the update has few
    parameters, so it overfits less than full fine-tuning and trains far less state.
    Source: Hu et al., 2021 (arXiv:2106.09685); implementation: huggingface/peft.
    """

    summary = "low-rank adapters (peft) on Linear/Conv2d layers, merged after training (--rank, --alpha)"
    Config = LoRAConfig

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        if self._frozen is not None:  # after prepare, the adapters themselves are Linear layers: use the plan
            return self._frozen
        adapted = _targets(backbone, self.config.targets)
        return [b for b in backbone.block_names if not any(t.startswith(f"blocks.{b}.") for t in adapted)]

    def __init__(self, config: LoRAConfig | None = None) -> None:
        super().__init__(config)
        self._frozen: list[str] | None = None

    def prepare(self, model: TransferModel) -> None:
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError:
            raise ConfigError("the lora strategy needs peft: pip install 'transferlab[text]'") from None
        backbone = model.backbone
        targets = _targets(backbone, self.config.targets)
        frozen = self.frozen_blocks(backbone)
        freeze(backbone, backbone.block_names)  # pretrained weights stay fixed; only adapters train
        config = LoraConfig(r=int(self.config.rank), lora_alpha=self.config.alpha, lora_dropout=self.config.lora_dropout,
                            target_modules=targets)
        inject_adapter_in_model(config, backbone)
        self._frozen = frozen

    def param_groups(self, model: TransferModel, lr: float, backbone_lr: float | None = None) -> list[dict[str, Any]]:
        """Adapters at `adapter_lr`, the head at `lr`; the frozen pretrained weights sit in a group of their own."""
        adapters = [p for n, p in model.backbone.named_parameters() if "lora_" in n]
        ids = {id(p) for p in adapters}
        rest = [p for p in model.backbone.parameters() if id(p) not in ids]
        groups = [{"name": "backbone", "params": rest, "lr": lr if backbone_lr is None else backbone_lr},
                  {"name": "adapters", "params": adapters, "lr": self.config.adapter_lr},
                  {"name": "head", "params": list(model.head.parameters()), "lr": lr}]
        return [g for g in groups if g["params"]] + auxiliary_groups(model, lr)

    def finalize(self, model: TransferModel) -> None:
        """Merge ΔW into W and put the plain layers back: the model is an ordinary backbone again."""
        from peft.tuners.lora import LoraLayer

        backbone = model.backbone
        for name, module in list(backbone.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent_name, _, child = name.rpartition(".")
                parent = backbone.get_submodule(parent_name) if parent_name else backbone
                setattr(parent, child, module.get_base_layer())
        for p in backbone.parameters():
            p.requires_grad_(False)
