"""CausIRL: match the feature distributions of two random halves of the pooled batch.

Chevalley et al. (2022) read invariance as "the feature distribution does not depend on
the domain". DomainBed's version cuts each domain's batch Z_d = f(x_d) [n_d, D] at a
random point c_d ~ U{0, …, n_d − 1} (NumPy's global generator, ``np.random.randint``,
one draw per domain in domain order) and pools the heads and the tails:

    A = ⊕_d Z_d[:c_d]        B = ⊕_d Z_d[c_d:]                       (⊕: concatenate rows)
    L = 1/S Σ_d CE(g(Z_d) + 1e-16, y_d)  +  γ · nan_to_num(Δ(A, B))

Δ = 0 unless both A and B have at least two rows. Δ is CORAL's (``coral.py``) for
``CausIRL_CORAL`` and the Gaussian-kernel MMD² (``mmd.py``) for ``CausIRL_MMD``;
γ = ``mmd_gamma``. The featurizer runs once on the concatenated domains; ``unlabeled``
is ignored (DomainBed's CausIRL does not adapt).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dgsamp.algorithms.alignment import MMD_GAMMA
from dgsamp.algorithms.base import Algorithm, make_optimizer
from dgsamp.algorithms.minibatches import concat_minibatches, per_domain_cross_entropy

CAUSIRL_PAPER = (
    "Chevalley, Bunne, Krause, Bauer: Invariant Causal Mechanisms through Distribution "
    "Matching, arXiv:2206.11646 (2022)"
)


def random_halves(features: Tensor, sizes: list[int], cuts: list[int]) -> tuple[Tensor, Tensor]:
    """(⊕_d Z_d[:c_d], ⊕_d Z_d[c_d:]) for ``features`` [N, D] split into ``sizes``."""
    parts = features.split(sizes)
    first = torch.cat([part[:cut] for part, cut in zip(parts, cuts)])
    second = torch.cat([part[cut:] for part, cut in zip(parts, cuts)])
    return first, second


class CausIRL(Algorithm):
    """CE plus γ times the discrepancy between the two random halves; subclasses set Δ."""

    HPARAMS = {"mmd_gamma": MMD_GAMMA}
    PAPER = CAUSIRL_PAPER
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = make_optimizer(self.parameters(), self.hparams)

    def discrepancy(self, za: Tensor, zb: Tensor) -> Tensor:
        """Δ(Z_a [n_a, D], Z_b [n_b, D]) -> scalar."""
        raise NotImplementedError

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, sizes = concat_minibatches(minibatches)
        features = self.featurizer(x)
        logits = self.classifier(features) + 1e-16
        class_loss = per_domain_cross_entropy(logits, y, sizes).mean()
        cuts = [int(np.random.randint(0, n)) for n in sizes]
        first, second = random_halves(features, sizes, cuts)
        if first.shape[0] > 1 and second.shape[0] > 1:
            penalty = torch.nan_to_num(self.discrepancy(first, second))
        else:
            penalty = features.new_zeros(())
        loss = class_loss + self.hparams["mmd_gamma"] * penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {
            "loss": loss.detach(),
            "class_loss": class_loss.detach(),
            "penalty": penalty.detach(),
        }
