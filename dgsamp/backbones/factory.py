"""Backbones: any timm model (or a registered custom one) as a featurizer.

    backbone = create_backbone("tf_efficientnet_lite0", input_shape=(3, 224, 224))
    z = backbone.featurizer(x)          # x[B, 3, S, S] -> z[B, backbone.featurizer.n_outputs]

A timm model (``arch`` or ``arch.tag``, e.g. ``resnet18.a1_in1k``) is built with
``num_classes=0`` so it returns pooled features; timm's own data config for that tag (input
size, mean, std) drives the transforms. Its weights are the ``WeightsChoice`` that
``dgsamp.backbones.weights.find_weights`` made (a file, packaged, cached, a download, or
random on purpose); ``create_backbone`` finds it itself, ``backbone_with_weights`` takes one
already found (the run finds it once, for its describe line and its build).

A registered custom backbone (DomainBed's MNIST CNN) has no pretrained weights: it starts
from its initialisation (or a ``--pretrained_file``), gets mean 0, std 1 and, on image
datasets, the dataset's image side as resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import timm.data
import timm.models
from torch import nn

from dgsamp.backbones import mnist_cnn  # noqa: F401  (registers the built-in custom backbone)
from dgsamp.backbones.featurizers import TimmFeaturizer
from dgsamp.backbones.pretrained import create_timm_model, load_checkpoint_file
from dgsamp.backbones.weights import WeightsChoice, find_weights
from dgsamp.errors import UserError
from dgsamp.registry import BACKBONES

PRETRAINED_CHOICES = ("auto", "hub", "none")


@dataclass
class Backbone:
    """A featurizer with the input resolution and normalisation its weights expect."""

    featurizer: nn.Module
    resolution: int  # square input side for image datasets (tensor datasets ignore it)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: str  # where the weights came from: random, packaged, hub, cache:<path> or a file path


def create_backbone(
    name: str,
    input_shape: tuple[int, int, int],
    pretrained: str = "auto",
    pretrained_file: str | Path | None = None,
    resolution: int | None = None,
    freeze_bn: bool = False,
) -> Backbone:
    """Build the featurizer ``name`` for inputs of ``input_shape`` (C, H, W), its weights
    found by ``--pretrained`` (auto, hub, none) or taken from ``pretrained_file``."""
    check_pretrained(pretrained)
    weights = find_weights(name, pretrained, pretrained_file)
    return backbone_with_weights(name, input_shape, weights, resolution, freeze_bn)


def check_pretrained(pretrained: str) -> None:
    if pretrained not in PRETRAINED_CHOICES:
        raise UserError(f"--pretrained must be one of {', '.join(PRETRAINED_CHOICES)}")


def backbone_with_weights(
    name: str,
    input_shape: tuple[int, int, int],
    weights: WeightsChoice,
    resolution: int | None = None,
    freeze_bn: bool = False,
) -> Backbone:
    """The featurizer ``name`` holding ``weights`` (``find_weights``'s choice)."""
    if name in BACKBONES:
        featurizer = BACKBONES.get(name)(input_shape)
        if weights.kind == "file":
            load_checkpoint_file(featurizer, weights.path)
        channels = input_shape[0]
        side = resolution or int(input_shape[-1])
        return Backbone(featurizer, side, (0.0,) * channels, (1.0,) * channels, weights.label())
    model = create_timm_model(name, weights, input_shape[0])
    config = timm.data.resolve_data_config({}, model=model)
    side = resolution or int(config["input_size"][-1])
    if side < 16:
        raise UserError(f"--resolution {side} is too small; use 16 or more")
    return Backbone(TimmFeaturizer(model, freeze_bn=freeze_bn), side, tuple(config["mean"]), tuple(config["std"]),
                    weights.label())
