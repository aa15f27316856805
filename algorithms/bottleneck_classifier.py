"""A classifier with a bottleneck, the head shape of tllib's DA models (AFN, MDD, ADDA, FixMatch).

tllib's ``Classifier`` (tllib/modules/classifier.py @ c4aa59e) maps pooled backbone
features z [B, D] through a bottleneck b to features f [B, d], and a head h to logits:

    f = b(z)        [B, d]   (the features the adaptation losses act on)
    logits = h(f)   [B, K]

dgsamp's featurizer already pools, so tllib's ``pool_layer`` has no counterpart here.
``linear_bn_relu`` is the bottleneck of tllib's ADDA and FixMatch models:
Linear(D, d) -> BatchNorm1d(d) -> ReLU.
"""

from __future__ import annotations

from torch import Tensor, nn


class BottleneckClassifier(nn.Module):
    """``z [B, D] -> h(b(z)) [B, K]``; ``features(z)`` gives ``b(z) [B, d]``."""

    def __init__(self, bottleneck: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.bottleneck = bottleneck
        self.head = head

    def features(self, z: Tensor) -> Tensor:
        return self.bottleneck(z)

    def forward(self, z: Tensor) -> Tensor:
        return self.head(self.bottleneck(z))


def linear_bn_relu(n_inputs: int, n_outputs: int) -> nn.Sequential:
    """Linear(n_inputs, n_outputs) -> BatchNorm1d -> ReLU (tllib's ADDA/FixMatch bottleneck)."""
    return nn.Sequential(nn.Linear(n_inputs, n_outputs), nn.BatchNorm1d(n_outputs), nn.ReLU())
