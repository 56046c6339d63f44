"""Parameter entries a run keeps at their values while the rest of the parameter trains.

A backbone may declare such entries (`backbone.pinned_entries()`: parameter name → boolean mask).
The text backbones declare the output coordinates their last LayerNorm switches off (weight and
bias ~0; all-MiniLM-L6-v2's coordinates 127 and 223): the pretrained encoder never uses them, and
keeping them off is what lets a tuned text classifier export as a plain `BertForSequenceClassification`
(export_hf.py; a LayerNorm's output has one degree of freedom fewer than the embedding, and a dead
coordinate pays for it). Without the pin, full fine-tuning turns them on: the head's gradient reaches
them (benchmarks/switched_off.py: to ~1e-3 on TREC-6). The constraint is 2 of the encoder's scalars per
coordinate, which the pretrained model had already set to 0.

Pinning is two things per optimiser step: the pinned entries' gradients are zeroed before the step
(no momentum or second-moment statistics build up, gradient clipping does not count them), and
their values are written back after it. The write-back is what makes it exact under weight decay:
torch's Adam (`--optimizer adam --weight-decay`) adds `weight_decay · p` to the gradient inside the
step, which Adam then divides by its tiny running scale, so the update overshoots and p oscillates
with a growing amplitude — measured, starting from 1.6e-32 with no other gradient, over 300 steps:
up to 8e-28 at lr 2e-5 and wd 0.01, 5e-6 at lr 2e-5 and wd 0.1, 3e-4 at lr 1e-3 and wd 0.01, far
above `SWITCHED_OFF` (1e-20). AdamW's decoupled decay (p ← p · (1 − lr · wd)) only shrinks it, and
SGD's adds lr · wd · p; the write-back covers all of them.
"""

from __future__ import annotations

import torch
from torch import nn


class Pins:
    """The pinned entries of `model` (a TransferModel or a backbone), with their values when created."""

    def __init__(self, model: nn.Module) -> None:
        backbone = getattr(model, "backbone", model)
        prefix = "backbone." if backbone is not model else ""
        declare = getattr(backbone, "pinned_entries", None)
        entries = declare() if declare is not None else {}
        params = dict(backbone.named_parameters())
        self.items: list[tuple[str, nn.Parameter, torch.Tensor, torch.Tensor]] = []
        for name, mask in entries.items():
            param = params[name]
            mask = mask.to(param.device)
            self.items.append((prefix + name, param, mask, param.detach()[mask].clone()))

    def __bool__(self) -> bool:
        return bool(self.items)

    def zero_grads(self) -> None:
        """Before the optimiser step: no gradient on a pinned entry."""
        for _, param, mask, _ in self.items:
            if param.grad is not None:
                param.grad.masked_fill_(mask, 0.0)

    @torch.no_grad()
    def restore(self) -> None:
        """After the optimiser step: the pinned entries hold their values again (weight decay included)."""
        for _, param, mask, values in self.items:
            param[mask] = values

    def record(self, trained: set[str] | None = None) -> dict[str, list[int]]:
        """{parameter name: [pinned flat indices]} for the parameters that trained (all, with `trained` None):
        what a model's config.json records as `training.kept_switched_off`."""
        return {name: [int(i) for i in mask.flatten().nonzero().flatten()]
                for name, _, mask, _ in self.items if trained is None or name in trained}
