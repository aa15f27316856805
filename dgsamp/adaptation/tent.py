"""Tent: fully test-time adaptation by entropy minimisation (Wang et al., ICLR 2021).

Every BatchNorm layer normalises with the test batch's own statistics (no running
statistics); only their affine parameters (γ, β) are trained, one Adam step per batch on

    L = 1/B Σ_i H(softmax(g(f(x_i))))          (mean prediction entropy, nats)

at ``lr = alpha * run lr`` with the run's weight decay, ``steps`` steps per batch. The rest
of the network is frozen and in eval mode (dropout off).

Reference: matsuolab/T3A ``domainbed/adapt_algorithms.py`` (``TentFull``, ``configure_model``,
``collect_params``) @ 4228a5b3982c4ba9b30fb2c7ca22b6269c176a0f: alpha ∈ {0.1, 1, 10}, steps ∈
{1, 3}; the defaults here are alpha 1, steps 1. Their ``collect_params`` takes BatchNorm2d
only; here every BatchNorm (1d/2d/3d) is adapted.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from dgsamp.adaptation.base import (
    GradientAdapter,
    batch_norm_layers,
    softmax_entropy,
    use_batch_statistics,
)
from dgsamp.errors import UserError


class Tent(GradientAdapter):
    """Entropy minimisation over the BatchNorm affine parameters (module docstring)."""

    NAME = "tent"

    @classmethod
    def check_model(cls, algorithm: nn.Module) -> None:
        if not any(layer.affine for layer in batch_norm_layers(algorithm.featurizer)):
            raise UserError(f"tent adapts BatchNorm layers and this {type(algorithm).__name__}'s featurizer has "
                            "none with affine parameters: use --method tent_bn (a BatchNorm before the classifier)")

    def configure(self) -> None:
        use_batch_statistics(batch_norm_layers(self.model.featurizer))

    def adapted_parameters(self) -> Iterable[nn.Parameter]:
        for layer in batch_norm_layers(self.model.featurizer):
            if layer.affine:
                yield layer.weight
                yield layer.bias

    def loss(self, logits: Tensor) -> Tensor:
        return softmax_entropy(logits).mean()
