"""Feature alignment over every pair of domains: the shared core of CORAL and MMD.

With S labelled source domains and T unlabeled target domains (T = 0 in domain
generalization), the M = S + T feature sets Z_1 .. Z_M (Z_m = f(x_m): [n_m, D]) are
aligned pairwise while the classifier trains on the sources:

    L = 1/N_s Σ_{i ∈ sources} CE(g(z_i), y_i)  +  γ · 1/|P| Σ_{(a,b) ∈ P} Δ(Z_a, Z_b)

P = all M(M-1)/2 unordered pairs, γ = ``mmd_gamma``, Δ the subclass's ``discrepancy``.
In domain adaptation each target batch is one more domain in P, so the featurizer pulls
the targets towards every source and the sources towards each other (DomainBed aligns
the sources only; with T = 0 this is exactly its penalty). The featurizer runs once per
domain when ``per_domain_passes`` (DomainBed's way, the DomainBed presets) or once on the
concatenation of all batches (``--featurizer_passes joint``: BatchNorm statistics pooled).
"""

from __future__ import annotations

from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import forward_each
from dgsamp.hparams import HParam

MMD_GAMMA = HParam(
    1.0, lambda r: 10 ** r.uniform(-1, 1), "weight γ of the alignment penalty", minimum=0
)


def mean_pairwise_discrepancy(features: list[Tensor], discrepancy) -> Tensor:
    """1/|P| Σ_{a<b} Δ(Z_a, Z_b); zero when there are fewer than two domains."""
    pairs = list(combinations(range(len(features)), 2))
    if not pairs:
        return features[0].new_zeros(())
    return torch.stack([discrepancy(features[a], features[b]) for a, b in pairs]).mean()


class FeatureAlignment(Algorithm):
    """ERM plus γ times the mean pairwise discrepancy; subclasses define ``discrepancy``."""

    HPARAMS = {"mmd_gamma": MMD_GAMMA}
    ADAPTS_TO_UNLABELED = True
    PER_DOMAIN_PASSES = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()

    def discrepancy(self, za: Tensor, zb: Tensor) -> Tensor:
        """Δ(Z_a [n_a, D], Z_b [n_b, D]) -> scalar."""
        raise NotImplementedError

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        inputs = [x for x, _ in minibatches] + list(unlabeled or [])
        features = forward_each(self.featurizer, inputs, self.per_domain_passes)  # Z_1 .. Z_M
        y = torch.cat([y for _, y in minibatches])
        class_loss = F.cross_entropy(self.classifier(torch.cat(features[: len(minibatches)])), y)
        penalty = mean_pairwise_discrepancy(features, self.discrepancy)
        loss = class_loss + self.hparams["mmd_gamma"] * penalty
        self.step(loss)
        return {
            "loss": loss.detach(),
            "class_loss": class_loss.detach(),
            "penalty": penalty.detach(),
        }
