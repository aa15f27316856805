"""Batched, vectorised image augmentation on uint8 batches, reproducible from a torch.Generator.

DomainBed's training transform, applied per sample but computed for the whole batch at once on
whatever device the batch lives on:

1. RandomResizedCrop(S, scale=(0.7, 1.0), ratio=(3/4, 4/3)): torchvision's sampling rule (10
   tries of area/aspect, first fitting one wins, else the whole image), the crop resized to
   S x S with bilinear ``grid_sample`` (one affine ``theta`` per sample);
2. RandomHorizontalFlip(p=0.5), folded into the same ``theta`` (x scale negated);
3. ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.3), the four operations in
   an independent random order per sample. Each is an affine colour map
   ``x' = clamp(M x + t, 0, 1)`` with a per-sample 3x3 ``M``:
     brightness b ~ U[0.7, 1.3]: M = b I;
     contrast c ~ U[0.7, 1.3]:   M = c I, t = (1 - c) * mean(gray(x));
     saturation s ~ U[0.7, 1.3]: M = s I + (1 - s) 1 w^T, w = (0.2989, 0.587, 0.114);
   and hue h ~ U[-0.3, 0.3] is torchvision's exact HSV hue shift H' = (H + h) mod 1 (S, V kept),
   computed for the whole batch and selected by mask where the sample's current step is hue;
4. RandomGrayscale(p=0.1): M = 1 w^T;
5. Normalize(mean, std) -> float32 [B, 3, S, S].

Differences from DomainBed's per-image PIL pipeline: the crop is taken from the image already
resized to S x S (dgsamp decodes each image once, see dgsamp.data.training_data), the crop's edge
pixels interpolate with the real neighbouring pixels, and colour maths runs in float rather than
uint8 (as torchvision does on tensors).

No step synchronises the host with a CUDA device: random draws come from the caller's
generator on its own device (pass a generator on the batch's device), selections are masks,
and constant tensors (gray weights, mean, std) are built once per (device, dtype) and cached.

The evaluation transform is ``(x / 255 - mean) / std``. Tensor datasets (MNIST family) use
:class:`IdentityTransform`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
CROP_SCALE = (0.7, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_TRIES = 10
JITTER = 0.3  # brightness, contrast, saturation and hue strength
GRAYSCALE_P = 0.1
FLIP_P = 0.5
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


@lru_cache(maxsize=64)
def constant(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``torch.tensor(values)`` on ``device``, built once per (values, device, dtype).

    Steady-state calls return the cached tensor, so no host-to-device copy (a CUDA sync) runs.
    Callers must not modify it in place.
    """
    return torch.tensor(values, device=device, dtype=dtype)


def _uniform(shape: Sequence[int], low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """U[low, high) drawn on the generator's device, then moved to ``device``."""
    draw = torch.rand(*shape, generator=generator, device=generator.device)
    return (low + (high - low) * draw).to(device)


def crop_flip_theta(
    batch_size: int, height: int, width: int, generator: torch.Generator, device: torch.device,
    scale: tuple[float, float] = CROP_SCALE,
) -> torch.Tensor:
    """Affine matrices [B, 2, 3] for RandomResizedCrop + RandomHorizontalFlip.

    A crop of w x h pixels at (row i, column j) maps output coordinate u in [-1, 1] to input
    x = (w / W) u + (2 j + w) / W - 1 (likewise for y); a flip negates the u coefficient.
    """
    area = height * width
    target_area = area * _uniform((batch_size, CROP_TRIES), *scale, generator, device)
    log_ratio = _uniform((batch_size, CROP_TRIES), math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), generator, device)
    aspect = torch.exp(log_ratio)
    crop_w = torch.round(torch.sqrt(target_area * aspect))
    crop_h = torch.round(torch.sqrt(target_area / aspect))
    fits = (crop_w > 0) & (crop_w <= width) & (crop_h > 0) & (crop_h <= height)
    first_fit = torch.argmax(fits.int(), dim=1, keepdim=True)  # first True (0 if none)
    any_fit = fits.any(dim=1)
    crop_w = torch.where(any_fit, crop_w.gather(1, first_fit).squeeze(1), torch.full_like(any_fit, width, dtype=crop_w.dtype))
    crop_h = torch.where(any_fit, crop_h.gather(1, first_fit).squeeze(1), torch.full_like(any_fit, height, dtype=crop_h.dtype))
    # Integer offsets uniform in [0, H - h] and [0, W - w], as torch.randint would give.
    row = torch.floor(_uniform((batch_size,), 0.0, 1.0, generator, device) * (height - crop_h + 1))
    col = torch.floor(_uniform((batch_size,), 0.0, 1.0, generator, device) * (width - crop_w + 1))
    flip = _uniform((batch_size,), 0.0, 1.0, generator, device) < FLIP_P
    theta = torch.zeros(batch_size, 2, 3, device=device)
    theta[:, 0, 0] = torch.where(flip, -1.0, 1.0) * crop_w / width
    theta[:, 0, 2] = (2 * col + crop_w) / width - 1
    theta[:, 1, 1] = crop_h / height
    theta[:, 1, 2] = (2 * row + crop_h) / height - 1
    return theta


def random_resized_crop_flip(x: torch.Tensor, size: int, generator: torch.Generator,
                             scale: tuple[float, float] = CROP_SCALE) -> torch.Tensor:
    """float [B, C, H, W] -> float [B, C, size, size], one random crop (+ flip) per sample; the
    crop covers a fraction in ``scale`` of the image's area."""
    batch_size, channels, height, width = x.shape
    theta = crop_flip_theta(batch_size, height, width, generator, x.device, scale)
    grid = F.affine_grid(theta, [batch_size, channels, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def hue_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift the HSV hue of float [B, 3, H, W] in [0, 1] by ``shift`` [B] turns; S and V kept.

    Hue in sixths of a turn from V = max, C = max - min: (G - B) / C where R is the max,
    2 + (B - R) / C where G is, 4 + (R - G) / C where B is. Back to RGB with the closed form
    channel_n = V - C * clamp(min(k, 4 - k), 0, 1), k = (n + 6 H') mod 6, n = 5, 3, 1 for R, G, B.
    """
    red, green, blue = x.unbind(dim=1)
    value = x.amax(dim=1)
    chroma = value - x.amin(dim=1)
    safe_chroma = torch.where(chroma == 0, torch.ones_like(chroma), chroma)
    red_max = value == red
    green_max = (value == green) & ~red_max
    sixths = torch.where(
        red_max,
        (green - blue) / safe_chroma,
        torch.where(green_max, 2.0 + (blue - red) / safe_chroma, 4.0 + (red - green) / safe_chroma),
    )
    sixths = sixths + 6.0 * shift.view(-1, 1, 1)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(sixths + n, 6.0)
        channels.append(value - chroma * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.stack(channels, dim=1)


def _gray_mixing(weight: torch.Tensor) -> torch.Tensor:
    """[B] weights s -> [B, 3, 3] matrices s I + (1 - s) 1 w^T (s = 0: grayscale)."""
    w = constant(GRAY_WEIGHTS, weight.device, weight.dtype)
    eye = torch.eye(3, device=weight.device, dtype=weight.dtype)
    s = weight.view(-1, 1, 1)
    return s * eye + (1 - s) * w.view(1, 1, 3).expand(1, 3, 3)


def apply_color_matrices(x: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """clamp(M x + t, 0, 1) per sample: x [B, 3, H, W], M [B, 3, 3], t [B]."""
    mixed = torch.einsum("bij,bjhw->bihw", matrix, x)
    return (mixed + offset.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def color_jitter(x: torch.Tensor, generator: torch.Generator, strength: float = JITTER) -> torch.Tensor:
    """ColorJitter(strength x 4) on float [B, 3, H, W] in [0, 1], per-sample random op order."""
    batch_size, device = len(x), x.device
    brightness = _uniform((batch_size,), 1 - strength, 1 + strength, generator, device)
    contrast = _uniform((batch_size,), 1 - strength, 1 + strength, generator, device)
    saturation = _uniform((batch_size,), 1 - strength, 1 + strength, generator, device)
    hue = _uniform((batch_size,), -strength, strength, generator, device)
    order = torch.argsort(torch.rand(batch_size, 4, generator=generator, device=generator.device), dim=1).to(device)
    eye = torch.eye(3, device=device, dtype=x.dtype).expand(batch_size, 3, 3)
    gray_weights = constant(GRAY_WEIGHTS, device, x.dtype).view(1, 3, 1, 1)
    candidates = torch.stack([
        brightness.view(-1, 1, 1) * eye,
        contrast.view(-1, 1, 1) * eye,
        _gray_mixing(saturation),
        eye,  # hue: not affine, applied below
    ], dim=1)  # [B, 4, 3, 3]
    rows = torch.arange(batch_size, device=device)
    for step in range(4):
        op = order[:, step]
        mean_gray = (x * gray_weights).sum(dim=1).mean(dim=(1, 2))
        offset = torch.where(op == CONTRAST, (1 - contrast) * mean_gray, torch.zeros_like(mean_gray))
        x = apply_color_matrices(x, candidates[rows, op], offset)
        # hue_shift is per sample, so shifting all and selecting by mask equals shifting the
        # selected rows only, without a data-dependent shape (no host sync on CUDA).
        x = torch.where((op == HUE).view(-1, 1, 1, 1), hue_shift(x, hue), x)
    return x


def random_grayscale(x: torch.Tensor, generator: torch.Generator, p: float = GRAYSCALE_P) -> torch.Tensor:
    """With probability p per sample, replace RGB by its luma in all three channels."""
    to_gray = _uniform((len(x),), 0.0, 1.0, generator, x.device) < p
    matrix = _gray_mixing(torch.where(to_gray, 0.0, 1.0))
    return torch.einsum("bij,bjhw->bihw", matrix, x)


class BatchTransform:
    """uint8 [B, 3, H, W] -> normalised float32 [B, 3, S, S]; DomainBed's augmentation if ``augment``.

    ``S`` is ``size`` or the input's H. Output memory format: ``memory_format`` (pass
    ``torch.channels_last`` for channels-last convolutions).
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool,
        size: int | None = None,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.augment = augment
        self.size = size
        self.memory_format = memory_format

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean = constant(self.mean, x.device, x.dtype).view(1, -1, 1, 1)
        std = constant(self.std, x.device, x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 [B, 3, H, W], got {x.dtype} {list(x.shape)}")
        size = self.size or x.shape[-1]
        images = x.float().div_(255.0)
        if self.augment:
            if generator is None:
                raise ValueError("augmentation needs an explicit torch.Generator")
            images = random_resized_crop_flip(images, size, generator)
            images = color_jitter(images, generator)
            images = random_grayscale(images, generator)
        elif images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return self.normalize(images).contiguous(memory_format=self.memory_format)


class IdentityTransform:
    """For tensor datasets (MNIST family): inputs are already float features; returned as they
    are, laid out in ``memory_format`` when they are 4-D ``[B, C, H, W]``."""

    augment = False

    def __init__(self, memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.memory_format = memory_format

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x
