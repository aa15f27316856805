"""tllib's bottleneck: a small layer stack between the pooled backbone features and the classifier.

    z = backbone(x)           [B, D]
    b = layers(z)             [B, W]     W = bottleneck_dim

Kinds (``tllib/alignment/*.py`` @ c4aa59e build them in each method's classifier):

- ``bn_relu``:         Linear(D, W) -> BatchNorm1d(W) -> ReLU           (DANN, CDAN, BSP, MCC, ...)
- ``relu_dropout``:    Linear(D, W) -> ReLU -> Dropout(0.5)             (DAN)
- ``bn_relu_dropout``: Linear(D, W) -> BatchNorm1d(W) -> ReLU -> Dropout(0.5)  (JAN)

The wrapped backbone stays reachable as ``.backbone`` so an optimizer can give it its own
learning rate (tllib: 0.1x), while the bottleneck trains at the full rate.
"""

from __future__ import annotations

from torch import Tensor, nn

BOTTLENECK_KINDS = ("none", "bn_relu", "relu_dropout", "bn_relu_dropout")


class BottleneckFeaturizer(nn.Module):
    """``backbone`` followed by a bottleneck of ``kind`` and width ``dim``; ``n_outputs`` = ``dim``."""

    def __init__(self, backbone: nn.Module, kind: str, dim: int) -> None:
        super().__init__()
        if kind not in BOTTLENECK_KINDS[1:]:
            raise ValueError(f"unknown bottleneck {kind!r}")
        self.backbone = backbone
        layers: list[nn.Module] = [nn.Linear(backbone.n_outputs, dim)]
        if kind.startswith("bn_"):
            layers.append(nn.BatchNorm1d(dim))
        layers.append(nn.ReLU())
        if kind.endswith("_dropout"):
            layers.append(nn.Dropout(0.5))
        self.bottleneck = nn.Sequential(*layers)
        self.n_outputs = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.bottleneck(self.backbone(x))
