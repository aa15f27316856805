"""The modules a run's features come from: a timm model without its head, and tllib's bottleneck.

    z = TimmFeaturizer(model)(x)                                  x[B, 3, S, S] -> z[B, D]
    b = BottleneckFeaturizer(featurizer, "bn_relu", W)(x)         x -> z[B, D] -> b[B, W]

The bottleneck is a small layer stack between the pooled backbone features and the
classifier. Kinds (``tllib/alignment/*.py`` @ c4aa59e build them in each method's classifier):

- ``bn_relu``:         Linear(D, W) -> BatchNorm1d(W) -> ReLU           (DANN, CDAN, BSP, MCC, ...)
- ``relu_dropout``:    Linear(D, W) -> ReLU -> Dropout(0.5)             (DAN)
- ``bn_relu_dropout``: Linear(D, W) -> BatchNorm1d(W) -> ReLU -> Dropout(0.5)  (JAN)

The wrapped featurizer stays reachable as ``.backbone`` so an optimizer can give it its own
learning rate (tllib: 0.1x), while the bottleneck trains at the full rate.
"""

from __future__ import annotations

from torch import Tensor, nn

BOTTLENECK_KINDS = ("none", "bn_relu", "relu_dropout", "bn_relu_dropout")


class TimmFeaturizer(nn.Module):
    """A timm model without classifier: ``x[B, 3, S, S] -> z[B, num_features]``.

    With ``freeze_bn`` every BatchNorm layer stays in eval mode during training (running
    statistics frozen), as DomainBed's 2020 ResNet protocol does. ``feature_dropout``
    (probability ``dropout``) acts on the pooled features z, as DomainBed's ResNet does with
    hparam ``resnet_dropout``; the algorithm sets its ``p`` from the hparams.
    """

    def __init__(self, model: nn.Module, freeze_bn: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.network = model
        self.n_outputs = model.num_features
        self.freeze_bn = freeze_bn
        self.feature_dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.feature_dropout(self.network(x))

    def train(self, mode: bool = True) -> TimmFeaturizer:
        super().train(mode)
        if self.freeze_bn:
            for module in self.network.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


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
