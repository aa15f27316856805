"""Tent-BN: Tent on a BatchNorm layer inserted before the classifier (the T3A paper's
"Tent-BN"), for networks without BatchNorm of their own (DomainBed's MNIST CNN).

    logits = g(BN(f(x)))       BN: BatchNorm1d(D), test-batch statistics, γ = 1, β = 0 at start
    L = 1/B Σ_i H(softmax(logits_i)),  Adam on (γ, β) only, lr = alpha * run lr

Reference: matsuolab/T3A ``domainbed/adapt_algorithms.py`` (``TentPreBN``, ``PreBN``) @
4228a5b3982c4ba9b30fb2c7ca22b6269c176a0f.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from dgsamp.adaptation.base import (
    GradientAdapter,
    classifier_of,
    softmax_entropy,
    use_batch_statistics,
)


class TentBN(GradientAdapter):
    """Entropy minimisation over a new BatchNorm before the classifier (module docstring)."""

    NAME = "tent_bn"

    @classmethod
    def check_model(cls, algorithm: nn.Module) -> None:
        classifier_of(algorithm, "tent_bn", linear=False)

    def configure(self) -> None:
        classifier_of(self.model, "tent_bn", linear=False)
        parameter = next(self.model.parameters())
        self.norm = nn.BatchNorm1d(self.model.featurizer.n_outputs).to(parameter.device)
        use_batch_statistics([self.norm])

    def adapted_parameters(self) -> Iterable[nn.Parameter]:
        return self.norm.parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.model.classifier(self.norm(self.model.featurizer(x)))

    def loss(self, logits: Tensor) -> Tensor:
        return softmax_entropy(logits).mean()
