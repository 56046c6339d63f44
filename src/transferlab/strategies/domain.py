"""What the domain-adaptation strategies share: their base class, the rows of a step, and the losses.

A domain-adaptation strategy learns from target inputs without their labels (`needs_unlabeled`):
every step sees a labelled batch — labelled *source* rows (for strategies with `needs_source`) and
the target's K labelled rows per class, if any — and a batch of unlabeled target rows. A run with
no labelled rows at all (a source-free strategy at `--shots 0`) iterates over the unlabeled rows,
whose target is `UNLABELED` (-1): they count as unlabeled in every loss here.

Model selection (there are no target labels to select by at 0 shots): such a run trains its fixed
budget and keeps its last weights; the validation accuracy it reports is measured on held-out
*source* rows (or is absent) and is never used to pick weights. With K target labels per class
the usual target validation split selects, as for every other strategy.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .base import Strategy

UNLABELED = -1  # the target of a row whose label is unknown (never read)


class DomainAdaptation(Strategy):
    """Base of the strategies that adapt to unlabeled target data (see the module docstring)."""

    needs_unlabeled: ClassVar[bool] = True
    needs_features: ClassVar[bool] = True
    # True: the labelled stream holds labelled source rows (--source-data, default: the model's source task)
    needs_source: ClassVar[bool] = False
    # True: the run may have no target labels at all (--shots 0)
    learns_without_labels: ClassVar[bool] = True
    # True: the head starts as the source head, its classes matched to the target's by name (required
    # when there are no labelled rows at all: something must name the classes)
    starts_from_source_head: ClassVar[bool] = True
    # How the run picks its weights without target labels (docs/domain_adaptation.md)
    model_selection: ClassVar[str] = "fixed budget, last weights (no target labels are read)"


def labelled_part(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of a batch whose label is known: (logits (L, C), targets (L,))."""
    known = targets != UNLABELED
    return logits[known], targets[known]


def unlabeled_part(rows: torch.Tensor, targets: torch.Tensor, stream: torch.Tensor | None) -> torch.Tensor:
    """Outputs (or inputs) of every unlabeled row of a step: the labelled batch's rows marked UNLABELED, then the stream's.

    Inputs of two sets may differ beyond the batch dimension (texts padded to each set's longest):
    they are zero-padded to one shape (padding id 0, mask 0) before joining.
    """
    parts = [rows[targets == UNLABELED]] + ([stream] if stream is not None else [])
    shape = [max(p.shape[d] for p in parts) for d in range(1, parts[0].dim())]
    padded = []
    for p in parts:
        pad = [n for d in reversed(range(1, p.dim())) for n in (0, shape[d - 1] - p.shape[d])]
        padded.append(F.pad(p, pad) if any(pad) else p)
    return torch.cat(padded)


def supervised_loss(logits: torch.Tensor, targets: torch.Tensor, batch: Any) -> torch.Tensor:
    """The configured criterion on the labelled rows (0 when the batch has none)."""
    known_logits, known = labelled_part(logits, targets)
    if len(known) == 0:
        return logits.sum() * 0.0  # keeps the graph (and the device) of the step
    return batch.criterion(known_logits, known)


class _GradientReversal(torch.autograd.Function):
    """Identity forward; gradient × −coeff backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


def reverse_gradient(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """The gradient-reversal layer: features pass unchanged, their gradient comes back × −coeff."""
    return _GradientReversal.apply(x, coeff)


def progress(batch: Any) -> float:
    """Share of the run done before this step, in [0, 1): p of Ganin et al.'s schedules.

    Measured in epochs (the step hook sees the epoch, not the epoch's length), so it depends on the
    step only and a resumed run restores it.
    """
    return (batch.epoch - 1) / max(1, batch.epochs)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL: ‖C_s − C_t‖²_F / (4d²) between the feature covariances (source (B, d), target (B', d))."""
    d = source.shape[1]

    def covariance(f: torch.Tensor) -> torch.Tensor:
        centred = f - f.mean(0, keepdim=True)
        return centred.T @ centred / max(1, len(f) - 1)  # (d, d)

    return (covariance(source) - covariance(target)).pow(2).sum() / (4 * d * d)


def mk_mmd(source: torch.Tensor, target: torch.Tensor, multipliers: list[float]) -> torch.Tensor:
    """Multi-kernel MMD² (DAN): a sum of Gaussian kernels whose bandwidths are the mean squared distance × each multiplier.

    The biased (V-statistic) estimate over all pairs; the base bandwidth is not differentiated through.
    """
    joint = torch.cat([source, target])  # (S + T, d)
    sq = torch.cdist(joint, joint).pow(2)  # (S + T, S + T)
    base = sq.detach().sum() / max(1, len(joint) ** 2 - len(joint))
    kernel = sum(torch.exp(-sq / (base * m + 1e-8)) for m in multipliers)
    s = len(source)
    return kernel[:s, :s].mean() + kernel[s:, s:].mean() - 2 * kernel[:s, s:].mean()


def entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Per-row entropy of class probabilities (B, C) -> (B,)."""
    return -(probabilities * torch.log(probabilities + 1e-6)).sum(1)
