"""A timm model without its classifier as a featurizer, with DomainBed's frozen-BN option."""

from __future__ import annotations

from torch import nn


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
