"""AFN: stepwise adaptive feature norm (Xu et al., ICCV 2019), as tllib trains it.

The featurizer's z [B, D] passes through ``num_blocks`` tllib ``Block``s (Linear -> BN ->
ReLU -> Dropout(p), the dropout output scaled by √(1 − p) in training so it keeps the L2
norm rather than the mean: overall ×1/√(1 − p) on kept units) to features f [B, d], then a
linear head. With f_s, f_t the source and target features and ``sg`` stop-gradient:

    L_norm(f) = 1/B Σ_i (‖f_i‖₂ − (sg(‖f_i‖₂) + Δr))²            SAFN, Δr = ``delta``
    H(p)      = 1/B Σ_i −Σ_k p_ik log(p_ik + 1e-5)   p = softmax(logits_t), ``prediction_entropy.py``
    L         = CE(logits_s, y) + λ (L_norm(f_s) + L_norm(f_t)) + μ H(p)

λ = ``trade_off_norm`` (tllib 0.05), μ = ``trade_off_entropy`` (tllib's Office-31 runs:
0.1; 0 drops the term, as its Office-Home runs do). Each step moves every feature norm
towards its current value + Δr: norms grow progressively rather than to a fixed radius.
Sources and targets take separate forward passes (tllib's afn.py): BatchNorm normalises
each on its own batch. The bottleneck and head are initialised as in tllib (weights
N(0, 0.01), biases N(0, 0.01), BN weights N(1, 0.01)).

``update`` reports ``loss`` = L, ``class_loss``, ``norm_loss`` (L_norm summed over the two
domains) and ``entropy_loss`` = H.

Training modes: GradSamp samples every parameter (featurizer, blocks, head), all of which
are trained on every update; AFN keeps no counter.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.bottleneck_classifier import BottleneckClassifier
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.algorithms.prediction_entropy import prediction_entropy
from dgsamp.algorithms.target_batches import pooled_targets
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def adaptive_feature_norm(f: Tensor, delta: float) -> Tensor:
    """SAFN loss 1/B Σ_i (‖f_i‖ − sg(‖f_i‖) − Δr)² for features ``f: [B, d]``."""
    norm = f.norm(p=2, dim=1)
    return (norm - (norm.detach() + delta)).pow(2).mean()


class NormPreservingBlock(nn.Module):
    """tllib's AFN ``Block``: Linear -> BN -> ReLU -> Dropout(p), times √(1 − p) in training."""

    def __init__(self, n_inputs: int, n_outputs: int, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(n_inputs, n_outputs)
        self.bn = nn.BatchNorm1d(n_outputs)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        f = self.dropout(F.relu(self.bn(self.fc(x))))
        if self.training:
            f = f * math.sqrt(1.0 - self.dropout.p)
        return f


def afn_classifier(n_features: int, num_classes: int, width: int, blocks: int, dropout: float):
    """``blocks`` norm-preserving blocks of ``width`` units and a linear head, tllib's init."""
    layers = [NormPreservingBlock(n_features if i == 0 else width, width, dropout) for i in range(blocks)]
    classifier = BottleneckClassifier(nn.Sequential(*layers), nn.Linear(width, num_classes))
    for module in classifier.modules():
        if isinstance(module, nn.BatchNorm1d):
            nn.init.normal_(module.weight, 1.0, 0.01)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.normal_(module.bias, 0.0, 0.01)
    return classifier


@register_algorithm("AFN")
class AFN(Algorithm):
    """Source cross-entropy, stepwise feature-norm growth on both domains, target entropy."""

    PAPER = (
        "Xu, Li, Yang & Lin: Larger Norm More Transferable: An Adaptive Feature Norm Approach "
        "for Unsupervised Domain Adaptation, ICCV 2019, arXiv:1811.07456"
    )
    SOURCE = (
        "tllib tllib/normalization/afn.py and examples/domain_adaptation/image_classification/afn.py "
        "@ c4aa59e"
    )
    HPARAMS = {
        "trade_off_norm": HParam(
            0.05, lambda r: 10 ** r.uniform(-2, -0.7), "λ of the feature-norm loss (tllib: 0.05)",
            minimum=0,
        ),
        "trade_off_entropy": HParam(
            0.1, lambda r: r.choice([0.0, 0.03, 0.1]),
            "μ of the target entropy (tllib afn.sh: 0.1 on Office-31, off on Office-Home)", minimum=0,
        ),
        "delta": HParam(
            1.0, lambda r: r.choice([0.1, 0.3, 1.0]), "Δr, the norm increment per step (tllib: 1)",
            minimum=0,
        ),
        "bottleneck_dim": HParam(
            1000, lambda r: int(r.choice([500, 1000, 2000])), "width of the blocks", minimum=1
        ),
        "num_blocks": HParam(1, lambda r: 1, "norm-preserving blocks before the head", minimum=1),
        "dropout_p": HParam(
            0.5, lambda r: r.choice([0.3, 0.5]), "dropout of the blocks", minimum=0, maximum=1,
            exclusive_maximum=True,
        ),
    }
    ADAPTS_TO_UNLABELED = True
    NEEDS_TARGET = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        hp = self.hparams
        self.classifier = afn_classifier(
            featurizer.n_outputs, num_classes, hp["bottleneck_dim"], hp["num_blocks"], hp["dropout_p"]
        )
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x_source, y, _ = concat_minibatches(minibatches)
        x_target = pooled_targets(unlabeled, "AFN")
        f_source = self.classifier.features(self.featurizer(x_source))
        f_target = self.classifier.features(self.featurizer(x_target))
        logits_target = self.classifier.head(f_target)
        class_loss = F.cross_entropy(self.classifier.head(f_source), y)
        delta = self.hparams["delta"]
        norm_loss = adaptive_feature_norm(f_source, delta) + adaptive_feature_norm(f_target, delta)
        entropy_loss = prediction_entropy(logits_target.softmax(1)).mean()
        loss = (
            class_loss + self.hparams["trade_off_norm"] * norm_loss
            + self.hparams["trade_off_entropy"] * entropy_loss
        )
        self.step(loss)
        return {
            "loss": loss.detach(),
            "class_loss": class_loss.detach(),
            "norm_loss": norm_loss.detach(),
            "entropy_loss": entropy_loss.detach(),
        }
