"""tllib's image transforms on decoded uint8 batches (``utils.py`` @ c4aa59e, ``--protocol tllib``).

Images are decoded once at ``R = round(S * 256 / 224)`` pixels (256 for S = 224: tllib's
``ResizeImage(256)``, a square resize), then per batch:

- training: RandomResizedCrop(S, scale=(0.08, 1.0), ratio=(3/4, 4/3)) + RandomHorizontalFlip,
  then Normalize: torchvision's defaults, as tllib's ``--train-resizing default``; no colour jitter;
- evaluation: CenterCrop(S) of the R x R image, then Normalize (``--val-resizing default``).

The crop sampling is DomainBed's batched one (``dgsamp.data.augment``) with tllib's scale range.
"""

from __future__ import annotations

import torch

from dgsamp.data.augment import BatchTransform, random_resized_crop_flip

TLLIB_CROP_SCALE = (0.08, 1.0)
RESIZE, CROP = 256, 224  # utils.py: ResizeImage(256) then a 224 crop


def decode_side(size: int) -> int:
    """The side images are decoded at so that a ``size`` crop is tllib's 224 of 256."""
    return round(size * RESIZE / CROP)


class TllibBatchTransform(BatchTransform):
    """uint8 [B, 3, R, R] -> normalised float32 [B, 3, S, S] with tllib's crops (module docstring)."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 [B, 3, H, W], got {x.dtype} {list(x.shape)}")
        size = self.size or x.shape[-1]
        images = x.float().div_(255.0)
        if self.augment:
            if generator is None:
                raise ValueError("augmentation needs an explicit torch.Generator")
            images = random_resized_crop_flip(images, size, generator, TLLIB_CROP_SCALE)
        else:
            top, left = round((x.shape[-2] - size) / 2), round((x.shape[-1] - size) / 2)  # torchvision's
            images = images[..., top:top + size, left:left + size]
        return self.normalize(images).contiguous(memory_format=self.memory_format)
