"""CausIRL: match the feature distributions of two random halves of the pooled batch.

Chevalley et al. (2022) read invariance as "the feature distribution does not depend on
the domain". DomainBed's version cuts each domain's batch Z_d = f(x_d) [n_d, D] at a
random point c_d ~ U{0, …, n_d − 1} (NumPy's global generator, ``np.random.randint``,
one draw per domain in domain order) and pools the heads and the tails:

    A = ⊕_d Z_d[:c_d]        B = ⊕_d Z_d[c_d:]                       (⊕: concatenate rows)
    L = 1/S Σ_d CE(g(Z_d) + 1e-16, y_d)  +  γ · nan_to_num(Δ(A, B))

Δ = 0 unless both A and B have at least two rows. Δ is CORAL's (``coral.py``) for
``CausIRL_CORAL`` and the Gaussian-kernel MMD² (``mmd.py``) for ``CausIRL_MMD``;
γ = ``mmd_gamma``. The featurizer runs once per domain with ``per_domain_passes``
(DomainBed's way, the DomainBed presets), else once on the concatenated domains;
``unlabeled`` is ignored (DomainBed's CausIRL does not adapt).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.alignment import MMD_GAMMA
from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import forward_each

CAUSIRL_PAPER = (
    "Chevalley, Bunne, Krause, Bauer: Invariant Causal Mechanisms through Distribution "
    "Matching, arXiv:2206.11646 (2022)"
)


def random_halves(features: list[Tensor], cuts: list[int]) -> tuple[Tensor, Tensor]:
    """(⊕_d Z_d[:c_d], ⊕_d Z_d[c_d:]) for the domains' features ``features`` [n_d, D]."""
    first = torch.cat([z[:cut] for z, cut in zip(features, cuts)])
    second = torch.cat([z[cut:] for z, cut in zip(features, cuts)])
    return first, second


class CausIRL(Algorithm):
    """CE plus γ times the discrepancy between the two random halves; subclasses set Δ."""

    HPARAMS = {"mmd_gamma": MMD_GAMMA}
    PAPER = CAUSIRL_PAPER
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"
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
        features = forward_each(
            self.featurizer, [x for x, _ in minibatches], self.per_domain_passes
        )
        risks = [
            F.cross_entropy(self.classifier(z) + 1e-16, y)
            for z, (_, y) in zip(features, minibatches)
        ]
        class_loss = sum(risks) / len(risks)  # DomainBed's running sum, then / S
        cuts = [int(np.random.randint(0, z.shape[0])) for z in features]
        first, second = random_halves(features, cuts)
        if first.shape[0] > 1 and second.shape[0] > 1:
            penalty = torch.nan_to_num(self.discrepancy(first, second))
        else:
            penalty = first.new_zeros(())
        loss = class_loss + self.hparams["mmd_gamma"] * penalty
        self.step(loss)
        return {
            "loss": loss.detach(),
            "class_loss": class_loss.detach(),
            "penalty": penalty.detach(),
        }
