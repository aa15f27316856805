"""SHOT-IM: information maximisation on the test stream (Liang et al., ICML 2020, "Do We
Really Need to Access the Source Data?"), the hypothesis (classifier) kept fixed.

    p_i = softmax(g(f(x_i))),  p̄ = 1/B Σ_i p_i
    L = 1/B Σ_i H(p_i) + Σ_k p̄_k log(p̄_k + 1e-5)      (confident, and diverse across the batch)

Adam on every featurizer parameter (the classifier ``g`` frozen), lr = alpha * run lr, the
run's weight decay, ``steps`` steps per batch; the network stays in eval mode (BatchNorm
keeps its running statistics), as in the reference.

Reference: matsuolab/T3A ``domainbed/adapt_algorithms.py`` (``SHOT``, ``SHOTIM``) @
4228a5b3982c4ba9b30fb2c7ca22b6269c176a0f: alpha ∈ {0.1, 1, 10}, steps ∈ {1, 3}; defaults
here alpha 1, steps 1.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from dgsamp.adaptation.base import GradientAdapter, softmax_entropy

DIVERSITY_EPSILON = 1e-5


def information_maximization_loss(logits: Tensor) -> Tensor:
    """Mean entropy minus the entropy of the mean prediction (module docstring); [B, K] -> []."""
    mean_probability = logits.softmax(dim=1).mean(dim=0)
    return softmax_entropy(logits).mean() + torch.sum(mean_probability * torch.log(mean_probability
                                                                                    + DIVERSITY_EPSILON))


class SHOTIM(GradientAdapter):
    """Information maximisation over the featurizer (module docstring)."""

    NAME = "shot_im"

    def adapted_parameters(self) -> Iterable[nn.Parameter]:
        return self.model.featurizer.parameters()

    def loss(self, logits: Tensor) -> Tensor:
        return information_maximization_loss(logits)
