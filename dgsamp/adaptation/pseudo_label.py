"""Pseudo-labelling on the test stream (Lee, ICML 2013 workshop, "Pseudo-Label"), as the
T3A paper's baseline: the model's own confident predictions become training labels.

    p_i = softmax(g(f(x_i))),  ŷ_i = argmax_k p_ik,  kept: max_k p_ik > beta (0.9)
    L = 1/|kept| Σ_{i kept} CE(g(f(x_i)), ŷ_i)

Adam on every parameter (featurizer and classifier), lr = alpha * run lr, the run's weight
decay, ``steps`` steps per batch; the network stays in eval mode.

Reference: matsuolab/T3A ``domainbed/adapt_algorithms.py`` (``PseudoLabel``) @
4228a5b3982c4ba9b30fb2c7ca22b6269c176a0f: beta 0.9, alpha ∈ {0.1, 1, 10}, steps ∈ {1, 3}.
One difference: where no prediction passes the threshold the reference takes the
cross-entropy of an empty batch (NaN) and steps on it; here that batch takes no step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.adaptation.base import GradientAdapter


class PseudoLabel(GradientAdapter):
    """Cross-entropy on confident pseudo-labels, every parameter updated (module docstring)."""

    NAME = "pseudo_label"
    HPARAMS = {**GradientAdapter.HPARAMS, "beta": 0.9}

    def adapted_parameters(self) -> Iterable[nn.Parameter]:
        return self.model.parameters()

    def loss(self, logits: Tensor) -> Tensor | None:
        confidence, labels = logits.detach().softmax(dim=1).max(dim=1)
        kept = confidence > float(self.hparams["beta"])
        if not bool(kept.any()):
            return None
        return F.cross_entropy(logits[kept], labels[kept])
