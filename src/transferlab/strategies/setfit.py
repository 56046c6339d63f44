"""`setfit`: the SetFit recipe (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts").

Phase 1 tunes the sentence encoder contrastively on pairs built from the few labelled examples —
same class → cosine similarity 1, different class → 0 (a cosine-similarity MSE loss, AdamW) — so the
embedding space separates the target classes. Phase 2 freezes the tuned encoder and fits a
classifier on its embeddings. A handful of labels yields many pairs, which is why it works with 8
examples per class.

The defaults follow the reference implementation, the `setfit` library (1.2, `Trainer` with
`num_iterations`): its "oversampling" pair sampler (every distinct pair of training rows, a row with
itself included, split into positives and negatives, each list cycled to `iterations` × rows, so
positives and negatives are balanced), its optimiser (AdamW at 2e-5 with weight decay 0.01 except on
biases and LayerNorm weights, 10% linear warm-up then linear decay to 0, gradients clipped to norm
1, pairs shuffled each run) and its head (scikit-learn's `LogisticRegression()` on the tuned
embeddings of the training rows). `pair_sampling="random"`, `head="linear"`, `pair_warmup=0`,
`pair_max_grad_norm=0` and `max_pairs=1280` give transferlab's earlier recipe (whose weight decay
also applied to biases and LayerNorm weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.backbone import Backbone
from ..models.head import TransferModel
from ..models.pinning import Pins
from .base import Strategy, register_strategy

PAIR_SAMPLINGS = ("oversampling", "random")
HEADS = ("logistic", "linear")


@dataclass
class SetFitConfig:
    iterations: int = field(default=20, metadata={"help": "pairs per example: this many positive and negative each"})
    max_pairs: int | None = field(default=None, metadata={
        "help": "cap on the number of contrastive pairs (default: none, 2 × iterations × examples, as the library)"})
    pair_lr: float = field(default=2e-5, metadata={"help": "learning rate of the contrastive phase (AdamW)"})
    pair_batch_size: int = field(default=16, metadata={"help": "pairs per step in the contrastive phase"})
    pair_sampling: Literal["oversampling", "random"] = field(default="oversampling", metadata={
        "help": "oversampling: the library's balanced cycle over every distinct pair; "
                "random: a random positive and negative partner per example and iteration"})
    pair_warmup: float = field(default=0.1, metadata={
        "help": "share of pair steps with the learning rate rising from 0, then falling linearly to 0 (0: constant rate)"})
    pair_weight_decay: float = field(default=0.01, metadata={
        "help": "AdamW weight decay in the pair phase (not on biases and LayerNorm weights)"})
    pair_max_grad_norm: float = field(default=1.0, metadata={"help": "clip pair-phase gradients to this norm (0: no clipping)"})
    head: Literal["logistic", "linear"] = field(default="logistic", metadata={
        "help": "logistic: scikit-learn LogisticRegression on the tuned embeddings (the library's); "
                "linear: a linear layer trained by gradient with early stopping on validation"})

    def __post_init__(self) -> None:
        for name in ("iterations", "max_pairs", "pair_batch_size"):
            value = getattr(self, name)
            if value is None and name == "max_pairs":
                continue
            if int(value) != value or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a whole number ≥ 1; got {value}")
        if not self.pair_lr > 0:
            raise ConfigError(f"--pair-lr must be positive; got {self.pair_lr}")
        if self.pair_sampling not in PAIR_SAMPLINGS:
            raise ConfigError(f"--pair-sampling {self.pair_sampling!r} is not one of {'|'.join(PAIR_SAMPLINGS)}; "
                              "oversampling is the SetFit library's sampler")
        if self.head not in HEADS:
            raise ConfigError(f"--head {self.head!r} is not one of {'|'.join(HEADS)}; logistic is the SetFit library's head")
        if not 0.0 <= self.pair_warmup < 1.0:
            raise ConfigError(f"--pair-warmup is a share of the pair steps, 0 ≤ share < 1; got {self.pair_warmup} "
                              "(the library's is 0.1)")
        for name in ("pair_weight_decay", "pair_max_grad_norm"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"--{name.replace('_', '-')} must be a number ≥ 0 (0: off); got {value}")


def contrastive_pairs(y: np.ndarray, iterations: int, max_pairs: int | None, rng: np.random.Generator,
                      sampling: str = "random") -> np.ndarray:
    """(P, 3) rows (i, j, same), shuffled, at most `max_pairs` (None: all).

    `random`: for each example and iteration one positive partner (another row of its class) and one
    negative. `oversampling` (the SetFit library's sampler with `num_iterations`): every distinct pair
    i ≤ j of rows (a row with itself is a positive pair: dropout makes its two embeddings differ), in a
    random order, split into positives and negatives; each list is cycled to iterations × rows pairs.
    """
    if sampling == "oversampling":
        n = len(y)
        i, j = np.triu_indices(n, 0)
        order = rng.permutation(len(i))
        i, j = i[order], j[order]
        same = y[i] == y[j]
        want = iterations * n
        parts = []
        for mask, label in ((same, 1), (~same, 0)):
            a, b = i[mask], j[mask]
            if len(a) == 0:
                continue
            take = np.arange(want) % len(a)  # cycled from the start, as the library does
            parts.append(np.stack([a[take], b[take], np.full(want, label)], axis=1))
        pairs = np.concatenate(parts).astype(np.int64)
    elif sampling == "random":
        rows = []
        by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
        for _ in range(iterations):
            for i_, c in enumerate(y):
                same_, other = by_class[c], np.flatnonzero(y != c)
                if len(same_) > 1:
                    rows.append((i_, rng.choice(same_[same_ != i_]), 1))
                if len(other):
                    rows.append((i_, rng.choice(other), 0))
        pairs = np.array(rows, dtype=np.int64).reshape(-1, 3)
    else:
        raise ConfigError(f"pair sampling {sampling!r} is not one of {'|'.join(PAIR_SAMPLINGS)}")
    rng.shuffle(pairs)
    return pairs if max_pairs is None else pairs[:max_pairs]


def warmup_linear(step: int, total: int, warmup: float) -> float:
    """The learning-rate factor at `step` (0-based) of `total`: linear rise over ceil(warmup·total)
    steps, then linear decay to 0 at `total` (transformers' linear schedule, as the library uses)."""
    if warmup == 0:
        return 1.0
    warm = math.ceil(total * warmup)
    if step < warm:
        return step / max(1, warm)
    return max(0.0, (total - step) / max(1, total - warm))


def _decay_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups as transformers' Trainer builds them: no decay on biases and LayerNorm weights."""
    no_decay = {id(p) for m in module.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    decay, rest = [], []
    for name, p in module.named_parameters():
        (rest if id(p) in no_decay or name.endswith("bias") else decay).append(p)
    return [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0})
            if g["params"]]


def fit_logistic_head(model: TransferModel, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
    """Load scikit-learn's `LogisticRegression()` (its defaults, as the SetFit library uses it) fitted on the
    encoder's embeddings of `x` into the head's output layer, so the head predicts exactly as it does."""
    from sklearn.linear_model import LogisticRegression

    out = model.head.out
    if len(model.head) != 1:
        raise ConfigError("setfit's logistic head is one linear layer; this head has hidden layers "
                          "(pass --head linear to train them by gradient, or drop the hidden layers)")
    model.backbone.eval()
    with torch.inference_mode():
        feats = torch.cat([model.backbone.features(x[s : s + 64]) for s in range(0, len(x), 64)])
    clf = LogisticRegression(random_state=seed).fit(feats.double().numpy(), y.numpy())
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # two classes: sklearn keeps one row (the second class's logit minus the first's)
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    weight = torch.zeros_like(out.weight)
    bias = torch.full_like(out.bias, -1e4)  # a class absent from the training rows is never predicted
    rows = torch.as_tensor(clf.classes_, dtype=torch.long)
    with torch.no_grad():
        weight[rows] = torch.as_tensor(coef, dtype=weight.dtype)
        bias[rows] = torch.as_tensor(intercept, dtype=bias.dtype)
        out.weight.copy_(weight)
        out.bias.copy_(bias)


@register_strategy("setfit", order=110)
class SetFit(Strategy):
    """Contrastive fine-tuning of the encoder on pairs of the few labelled examples, then a classifier head.

    Helps most with very few labels per class on text (8–16), where plain fine-tuning overfits and a
    linear probe of the untuned embeddings underfits. Source: Tunstall et al., 2022 (arXiv:2209.11055);
    the defaults are the `setfit` library's recipe.
    """

    summary = "SetFit: contrastive pair fine-tuning of the encoder, then a logistic-regression head on its embeddings"
    Config = SetFitConfig
    tunes_backbone_before_fit = True
    tiny_options = {"iterations": 2}

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        return backbone.block_names  # phase 2: the tuned encoder is frozen, only the head trains

    def param_groups(self, model: TransferModel, lr: float, backbone_lr: float | None = None) -> list[dict[str, Any]]:
        # The logistic head is already fitted (before_fit): the engine's head phase keeps it as it is
        # (learning rate 0: the epochs only validate it).
        fitted = getattr(self, "head_fitted_", False)
        return super().param_groups(model, 0.0 if fitted else lr, backbone_lr)

    def before_fit(self, model: TransferModel, x: torch.Tensor, y: torch.Tensor, seed: int, progress=False) -> None:
        """Phase 1: tune the encoder so same-class examples embed close together (`progress`: per pair batch);
        with `head="logistic"` and class labels, fit the head on the tuned embeddings too."""
        from ..progress import progress_steps

        cfg = self.config
        if len(torch.unique(y)) < 2:
            raise ConfigError("setfit needs at least two classes in the training split to build pairs")
        rng = np.random.default_rng(seed)
        pairs = torch.from_numpy(contrastive_pairs(y.numpy(), cfg.iterations, cfg.max_pairs, rng, cfg.pair_sampling))
        backbone = model.backbone
        params = list(backbone.parameters())
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(_decay_groups(backbone, cfg.pair_weight_decay), lr=cfg.pair_lr)
        steps = math.ceil(len(pairs) / cfg.pair_batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_linear(step, steps, cfg.pair_warmup))
        pins = Pins(backbone)  # switched-off coordinates stay off (models/pinning.py)
        backbone.train()
        with progress_steps(f"setfit pairs ×{cfg.pair_batch_size}", total=steps, progress=progress) as advance:
            for start in range(0, len(pairs), cfg.pair_batch_size):
                batch = pairs[start : start + cfg.pair_batch_size]
                both = backbone.features(torch.cat([x[batch[:, 0]], x[batch[:, 1]]]))  # (2B, D): one pass, own dropout per row
                u, v = both[: len(batch)], both[len(batch) :]
                loss = F.mse_loss(F.cosine_similarity(u, v), batch[:, 2].float())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                pins.zero_grads()
                if cfg.pair_max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, cfg.pair_max_grad_norm)
                opt.step()
                pins.restore()
                schedule.step()
                advance(1)
        for p in params:
            p.requires_grad_(False)
        backbone.eval()
        self.pair_steps = steps
        if cfg.head == "logistic" and not torch.is_floating_point(y):  # numeric targets: the linear head trains
            fit_logistic_head(model, x, y, seed)
            self.head_fitted_ = True
