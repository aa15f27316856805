"""The two batch transforms of a run (train: augments when the hparams say so; eval: never)
and the layout and image side the decoded splits need for them.

    transforms = make_transforms((3, 224, 224), True, mean, std, augment=True, side=224, style="tllib")
    transforms.stored_side   # 256: tllib resizes to 256 and crops 224 (``augment_tllib``)
    x = transforms.eval(batch_uint8, None)    # float [B, C, S, S] in ``transforms.memory_format``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from dgsamp.data.augment import BatchTransform, IdentityTransform
from dgsamp.data.augment_tllib import TllibBatchTransform, decode_side


@dataclass
class Transforms:
    """uint8 batch -> model input: ``train`` augments (when asked to), ``eval`` does not;
    images are decoded once at ``stored_side`` (None: tensor data, stored as they are)."""

    train: Any
    eval: Any
    memory_format: torch.memory_format
    stored_side: int | None


def preferred_memory_format(input_shape: tuple[int, ...]) -> torch.memory_format:
    """channels_last for image-shaped inputs ``[C, H, W]`` on any device, else contiguous.

    Convolutions run channels_last faster on CUDA (tensor cores) and on the CPU (oneDNN:
    1.8x per update for EfficientNet-lite0 at 64 px, 1.4x per evaluated MNIST digit, one thread).
    """
    return torch.channels_last if len(input_shape) == 3 else torch.contiguous_format


def make_transforms(input_shape: Sequence[int], is_image: bool, mean: Sequence[float], std: Sequence[float],
                    augment: bool, side: int, style: str) -> Transforms:
    """Both transforms for inputs of ``input_shape`` at ``side`` px: the identity for tensor data
    (MNIST family), else DomainBed's (``style`` domainbed, ``dgsamp.data.augment``) or tllib's
    (``dgsamp.data.augment_tllib``)."""
    memory_format = preferred_memory_format(tuple(input_shape))
    if not is_image:
        return Transforms(IdentityTransform(memory_format), IdentityTransform(memory_format), memory_format, None)
    kind = TllibBatchTransform if style == "tllib" else BatchTransform
    stored = decode_side(side) if style == "tllib" else side
    return Transforms(kind(mean, std, augment, side, memory_format), kind(mean, std, False, side, memory_format),
                      memory_format, stored)
