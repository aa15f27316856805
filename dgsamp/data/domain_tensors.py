"""Decode a domain split once into tensors, so training and evaluation never touch files again.

Image domains (items ``(PIL.Image, label)``) become ``x`` uint8 [N, 3, S, S]: every image is
resized straight to S x S with PIL's antialiased bilinear filter (what DomainBed's
``Resize((224, 224))`` does on PIL images); normalisation and augmentation happen later on the
batch (dgsamp.data.augment). Tensor domains (MNIST family) become their float stack [N, C, H, W].
``y`` is int64 [N]. Memory: N * 3 * S * S bytes, e.g. 9,991 PACS images at 224 px: 1.5 GB.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, TensorDataset


@dataclass
class DomainTensors:
    """One decoded split: inputs ``x`` [N, ...] and labels ``y`` int64 [N]."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} items but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def is_uint8_image(self) -> bool:
        return self.x.dtype == torch.uint8

    def to(self, device: torch.device | str, non_blocking: bool = False) -> DomainTensors:
        return DomainTensors(
            self.x.to(device, non_blocking=non_blocking), self.y.to(device, non_blocking=non_blocking)
        )

    def pin_memory(self) -> DomainTensors:
        return DomainTensors(self.x.pin_memory(), self.y.pin_memory())

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x[indices], y[indices])``; indices on the same device as the tensors."""
        return self.x[indices], self.y[indices]


def default_num_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def image_to_uint8(image: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image -> uint8 [3, size, size], resized with antialiased bilinear."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def _materialize_images(domain: Dataset, indices: np.ndarray, size: int, num_threads: int) -> DomainTensors:
    x = torch.empty(len(indices), 3, size, size, dtype=torch.uint8)
    y = torch.empty(len(indices), dtype=torch.int64)

    def decode(slot: int) -> None:
        image, label = domain[int(indices[slot])]
        x[slot] = image_to_uint8(image, size)
        y[slot] = int(label)

    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        # list() re-raises the first worker error (e.g. a UserError naming a corrupt file).
        list(pool.map(decode, range(len(indices))))
    return DomainTensors(x, y)


def materialize(
    domain: Dataset,
    indices: Sequence[int] | np.ndarray,
    size: int | None,
    num_threads: int | None = None,
) -> DomainTensors:
    """Decode ``domain[i]`` for every ``i`` in ``indices``, in that order.

    Image domains need ``size`` and decode in a thread pool (PIL releases the GIL while
    decoding and resizing); each image lands in its own slot, so the order is deterministic.
    Tensor domains ignore ``size``: a domain with ``take(indices)`` (MnistDomain) or a
    TensorDataset is indexed in one go, any other is stacked item by item.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if hasattr(domain, "take"):
        x, y = domain.take(indices)
        return DomainTensors(x, y.long())
    if isinstance(domain, TensorDataset):
        index = torch.from_numpy(indices)
        return DomainTensors(domain.tensors[0][index], domain.tensors[1][index].long())
    if len(indices) == 0:
        if size is None:
            raise ValueError("cannot tell the shape of an empty split without size")
        return DomainTensors(torch.empty(0, 3, size, size, dtype=torch.uint8), torch.empty(0, dtype=torch.int64))
    first, _ = domain[int(indices[0])]
    if isinstance(first, Image.Image):
        if size is None:
            raise ValueError("materialize needs size for an image domain")
        return _materialize_images(domain, indices, size, num_threads or default_num_threads())
    items = [domain[int(i)] for i in indices]
    return DomainTensors(
        torch.stack([torch.as_tensor(x) for x, _ in items]),
        torch.tensor([int(label) for _, label in items], dtype=torch.int64),
    )
