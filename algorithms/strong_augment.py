"""FixMatch's strong view: torchvision's RandAugment on batches that are already normalised.

The trainer hands ``update`` float batches x = (pixels / 255 − mean) / std on the device
(``dgsamp.data.augment.BatchTransform``; tensor datasets such as MNIST: mean 0, std 1, values
in [0, 1]). RandAugment works on pixel values, so each batch goes back to uint8 first:

    u = round(255 · clamp(x · std + mean, 0, 1))        uint8 [B, C, H, W]
    u'_i = RandAugment(N, M)(u_i)                        per image: its own N ops and draws
    x' = (u' / 255 − mean) / std                         float, x's dtype

Draws come from torch's global generator (torchvision's RandAugment), so a seeded run,
and a resumed one (checkpoints carry that generator), augments identically.

``input_normalisation(featurizer)`` recovers the mean and std the trainer normalised with:
dgsamp's backbone factory takes them from timm's data config of the model
(``dgsamp/backbones/factory.py``); a registered custom backbone (the MNIST CNN) and any
non-timm featurizer use mean 0, std 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import timm.data
import torch
from torch import Tensor, nn
from torchvision.transforms import v2

from dgsamp.data.augment import constant
from dgsamp.errors import UserError


def input_normalisation(featurizer: nn.Module, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel that the featurizer's inputs were normalised with."""
    model = getattr(featurizer, "network", featurizer)  # dgsamp's TimmFeaturizer wraps the model
    if getattr(model, "pretrained_cfg", None) is not None:
        config = timm.data.resolve_data_config({}, model=model)
        return tuple(config["mean"]), tuple(config["std"])
    return (0.0,) * channels, (1.0,) * channels


class StrongAugment:
    """RandAugment(``num_ops``, ``magnitude``) per image of a normalised float batch."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], num_ops: int = 2, magnitude: int = 10):
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.rand_augment = v2.RandAugment(num_ops=num_ops, magnitude=magnitude)

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[1] != len(self.mean):
            raise UserError(
                f"FixMatch's RandAugment takes 1- or 3-channel images, got a batch of shape "
                f"{list(x.shape)}; choose an image dataset or another algorithm"
            )
        mean = constant(self.mean, x.device, x.dtype).view(1, -1, 1, 1)
        std = constant(self.std, x.device, x.dtype).view(1, -1, 1, 1)
        pixels = (x * std + mean).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
        augmented = torch.stack([self.rand_augment(image) for image in pixels])
        return (augmented.to(x.dtype) / 255.0 - mean) / std
