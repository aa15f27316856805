"""FixMatch (Sohn et al., NeurIPS 2020) for domain adaptation, as tllib trains it.

The model is tllib's ``ImageClassifier`` of fixmatch.py: featurizer -> bottleneck
Linear(D, d) -> BN -> ReLU -> linear head. The unlabeled target batch x_t arrives already
through the trainer's augmentation (crop, flip, colour jitter when ``data_augmentation``) and
normalised: that is the weak view. The strong view is RandAugment(2 ops, magnitude 10) of
it (``strong_augment.py``; tllib uses timm's ``rand-m10-n2-mstd2``, whose magnitude is also
jittered with std 2, and draws an independent crop for each view). Then

    q_i, ŷ_i = max_k, argmax_k softmax(g(x_t,i))_k       weak view, no gradient
    m_i      = 1[q_i > τ]                                 τ = ``threshold`` (0.9)
    L_u      = 1/n_t Σ_i m_i CE(g(strong(x_t,i)), ŷ_i)    tllib's ConfidenceBasedSelfTrainingLoss
    L        = CE(g(x_s), y) + λ_u L_u                    λ_u = ``trade_off`` (1)

Three forward passes in tllib's order: weak targets (no gradient, BatchNorm statistics still
updated), sources, strong targets; one optimizer step.

``update`` reports ``loss`` = L, ``class_loss``, ``self_training_loss`` = λ_u L_u and
``pseudo_label_ratio`` = mean m.

Training modes: GradSamp samples every parameter (featurizer, bottleneck, head), all trained
on every update; FixMatch keeps no counter. RandAugment's draws come from torch's global
generator, which checkpoints carry.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.bottleneck_classifier import BottleneckClassifier, linear_bn_relu
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.algorithms.strong_augment import StrongAugment, input_normalisation
from dgsamp.algorithms.target_batches import pooled_targets
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def confident_pseudo_label_loss(logits_strong: Tensor, logits_weak: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """1/n Σ_i m_i CE(logits_strong_i, ŷ_i) and the mask m [n] (see the module docstring)."""
    confidence, pseudo_labels = logits_weak.detach().softmax(1).max(1)
    mask = (confidence > threshold).to(logits_strong.dtype)
    return (F.cross_entropy(logits_strong, pseudo_labels, reduction="none") * mask).mean(), mask


@register_algorithm("FixMatch")
class FixMatch(Algorithm):
    """Source cross-entropy plus confident weak-view pseudo-labels taught to the strong view."""

    PAPER = (
        "Sohn, Berthelot, Li, Zhang, Carlini, Cubuk, Kurakin, Zhang & Raffel: FixMatch: "
        "Simplifying Semi-Supervised Learning with Consistency and Confidence, NeurIPS 2020, "
        "arXiv:2001.07685"
    )
    SOURCE = (
        "tllib tllib/self_training/pseudo_label.py and "
        "examples/domain_adaptation/image_classification/fixmatch.py @ c4aa59e"
    )
    HPARAMS = {
        "threshold": HParam(
            0.9, lambda r: r.choice([0.8, 0.9, 0.95]), "confidence threshold τ (tllib: 0.9)",
            minimum=0, maximum=1,
        ),
        "trade_off": HParam(
            1.0, lambda r: 10 ** r.uniform(-0.5, 0.5), "λ_u of the pseudo-label loss (tllib: 1)",
            minimum=0,
        ),
        "bottleneck_dim": HParam(
            1024, lambda r: int(r.choice([256, 1024, 2048])),
            "bottleneck width (tllib: 1024; its Office-31 runs: 256)", minimum=1,
        ),
        "rand_augment_ops": HParam(2, lambda r: 2, "RandAugment ops per image (tllib: 2)", minimum=1),
        "rand_augment_magnitude": HParam(
            10, lambda r: int(r.choice([5, 10, 15])), "RandAugment magnitude (tllib: 10)",
            minimum=0, maximum=30,
        ),
    }
    ADAPTS_TO_UNLABELED = True
    NEEDS_TARGET = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        width = self.hparams["bottleneck_dim"]
        self.classifier = BottleneckClassifier(
            linear_bn_relu(featurizer.n_outputs, width), nn.Linear(width, num_classes)
        )
        self.optimizer = self.default_optimizer()
        self.strong_augment: StrongAugment | None = None  # built on the first batch (its channels)

    def strong_view(self, x_weak: Tensor) -> Tensor:
        if self.strong_augment is None:
            mean, std = input_normalisation(self.featurizer, x_weak.shape[1])
            self.strong_augment = StrongAugment(
                mean, std, self.hparams["rand_augment_ops"], self.hparams["rand_augment_magnitude"]
            )
        return self.strong_augment(x_weak)

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x_source, y, _ = concat_minibatches(minibatches)
        x_weak = pooled_targets(unlabeled, "FixMatch")
        with torch.no_grad():
            logits_weak = self.predict(x_weak)
        class_loss = F.cross_entropy(self.predict(x_source), y)
        unlabeled_loss, mask = confident_pseudo_label_loss(
            self.predict(self.strong_view(x_weak)), logits_weak, self.hparams["threshold"]
        )
        self_training_loss = self.hparams["trade_off"] * unlabeled_loss
        loss = class_loss + self_training_loss
        self.step(loss)
        return {
            "loss": loss.detach(),
            "class_loss": class_loss.detach(),
            "self_training_loss": self_training_loss.detach(),
            "pseudo_label_ratio": mask.mean().detach(),
        }
