"""MCD: maximum classifier discrepancy (Saito et al., CVPR 2018), tllib's three-step update.

A generator G (the featurizer) feeds two classifier heads F1, F2 (tllib's MCD
``ImageClassifierHead``: Dropout(0.5) -> Linear(D, d) -> BN -> ReLU -> Dropout(0.5) ->
Linear(d, d) -> BN -> ReLU -> Linear(d, K), d = ``bottleneck_dim``). With p_j = softmax(F_j(G(x)))
[N, K] on the sources s (labels y) and the targets t:

    d(p, q)  = 1/(N K) Σ_i Σ_k |p_ik − q_ik|                     classifier discrepancy
    H̄(p)     = −1/K Σ_k log(1/N Σ_i p_ik + 1e-6)                 MCD's batch entropy
    L_src    = CE(F1, y) + CE(F2, y) + μ (H̄(p1_t) + H̄(p2_t))     μ = ``trade_off_entropy``

    (A) min_{G, F1, F2}  L_src
    (B) min_{F1, F2}     L_src − λ d(p1_t, p2_t)                 λ = ``trade_off``
    (C) min_G            λ d(p1_t, p2_t), repeated ``num_k`` times

Each step runs G on the sources and targets concatenated and the heads on all of it (their
BatchNorm sees both domains), as tllib's mcd.py does. Step (B) runs G without autograd: it
updates only the heads, so G's gradient would be thrown away (tllib computes and discards it).
``predict`` is F1: tllib's validation reports both heads' accuracies and builds its
confusion matrix from F1.

``update`` reports ``loss`` (the step-B objective, tllib's logged loss), ``class_loss``
(CE of F1 and F2 summed, step A), ``entropy_loss`` (H̄ of both heads, step A),
``discrepancy`` d (last step C) and ``transfer_loss`` = λ d.

Training modes: GradSamp samples every parameter (G, F1 and F2). That is right: all three
are trained on every update, G by steps A and C, the heads by A and B. There is no
counter; the two optimizers (G; F1 and F2) are checkpointed with the algorithm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.algorithms.target_batches import pooled_targets
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def classifier_discrepancy(p1: Tensor, p2: Tensor) -> Tensor:
    """d(p1, p2) = mean over examples and classes of |p1 − p2|, ``p1, p2: [N, K]``."""
    return (p1 - p2).abs().mean()


def batch_entropy(p: Tensor) -> Tensor:
    """MCD's H̄(p) = −mean_k log(mean_i p_ik + 1e-6) for probabilities ``p: [N, K]``."""
    return -torch.log(p.mean(0) + 1e-6).mean()


def mcd_head(n_features: int, num_classes: int, width: int) -> nn.Sequential:
    """tllib's MCD ``ImageClassifierHead`` without its pooling: z [B, D] -> logits [B, K]."""
    return nn.Sequential(
        nn.Dropout(0.5), nn.Linear(n_features, width), nn.BatchNorm1d(width), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
        nn.Linear(width, num_classes),
    )


@register_algorithm("MCD")
class MCD(Algorithm):
    """Two heads disagree on the targets (B); the generator makes them agree (C)."""

    PAPER = (
        "Saito, Watanabe, Ushiku & Harada: Maximum Classifier Discrepancy for Unsupervised "
        "Domain Adaptation, CVPR 2018, arXiv:1712.02560"
    )
    SOURCE = (
        "tllib tllib/alignment/mcd.py and examples/domain_adaptation/image_classification/mcd.py "
        "@ c4aa59e"
    )
    HPARAMS = {
        "trade_off": HParam(
            10.0, lambda r: 10 ** r.uniform(-0.5, 2.5),
            "λ of the discrepancy (tllib mcd.sh: 10 on Office-31, 30 on Office-Home)", minimum=0,
        ),
        "trade_off_entropy": HParam(
            0.01, lambda r: r.choice([0.0, 0.01, 0.03]), "μ of the batch entropy (tllib: 0.01)",
            minimum=0,
        ),
        "num_k": HParam(4, lambda r: int(r.choice([2, 3, 4])), "generator steps (C) per update", minimum=1),
        "bottleneck_dim": HParam(
            1024, lambda r: int(r.choice([512, 1024, 2048])), "width d of both heads", minimum=1
        ),
    }
    ADAPTS_TO_UNLABELED = True
    NEEDS_TARGET = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        width = self.hparams["bottleneck_dim"]
        self.classifier = mcd_head(featurizer.n_outputs, num_classes, width)  # F1, used by predict
        self.second_classifier = mcd_head(featurizer.n_outputs, num_classes, width)  # F2
        self.generator_optimizer = self.default_optimizer(self.featurizer.parameters())
        self.heads_optimizer = self.default_optimizer(
            [*self.classifier.parameters(), *self.second_classifier.parameters()]
        )

    def heads(self, z: Tensor, n_source: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Source logits of F1, F2 [n_s, K] and target probabilities of F1, F2 [n_t, K]."""
        logits1, logits2 = self.classifier(z), self.second_classifier(z)
        p1_t, p2_t = logits1[n_source:].softmax(1), logits2[n_source:].softmax(1)
        return logits1[:n_source], logits2[:n_source], p1_t, p2_t

    def source_objective(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """L_src, its CE and entropy parts, and d(p1_t, p2_t)."""
        logits1, logits2, p1_t, p2_t = self.heads(z, y.shape[0])
        class_loss = F.cross_entropy(logits1, y) + F.cross_entropy(logits2, y)
        entropy_loss = batch_entropy(p1_t) + batch_entropy(p2_t)
        objective = class_loss + self.hparams["trade_off_entropy"] * entropy_loss
        return objective, class_loss, entropy_loss, classifier_discrepancy(p1_t, p2_t)

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x_source, y, _ = concat_minibatches(minibatches)
        x = torch.cat([x_source, pooled_targets(unlabeled, "MCD")])
        trade_off = self.hparams["trade_off"]
        optimizers = (self.generator_optimizer, self.heads_optimizer)

        # (A) G, F1, F2 on the sources (and the entropy term)
        objective, class_loss, entropy_loss, _ = self.source_objective(self.featurizer(x), y)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        objective.backward()
        for optimizer in optimizers:
            optimizer.step()

        # (B) the heads alone: stay accurate on the sources, disagree on the targets
        with torch.no_grad():
            z = self.featurizer(x)
        objective, _, _, discrepancy = self.source_objective(z, y)
        loss = objective - trade_off * discrepancy
        self.step(loss, self.heads_optimizer)

        # (C) G alone, num_k times: make the heads agree on the targets
        for _ in range(self.hparams["num_k"]):
            _, _, p1_t, p2_t = self.heads(self.featurizer(x), y.shape[0])
            discrepancy = classifier_discrepancy(p1_t, p2_t)
            self.step(trade_off * discrepancy, self.generator_optimizer)
        return {
            "loss": loss.detach(),
            "class_loss": class_loss.detach(),
            "entropy_loss": entropy_loss.detach(),
            "discrepancy": discrepancy.detach(),
            "transfer_loss": (trade_off * discrepancy).detach(),
        }
