"""DomainBed's MNIST domains: RotatedMNIST and ColoredMNIST, read from raw idx files.

Both read ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``, concatenate
train and test (70,000 digits), shuffle them with a fixed seed and deal them out to the
environments DomainBed's way: environment ``i`` of ``E`` gets digits ``i, i+E, i+2E, ...``
(so sizes differ by at most one).

RotatedMNIST (Ghifary et al. 2015, as in DomainBed): environment ``a`` holds digits rotated
counter-clockwise by ``a`` degrees (bilinear, zero fill), ``x`` in [0, 1] of shape [1, 28, 28],
``y`` the digit (10 classes).

ColoredMNIST (Arjovsky et al. 2019, as in DomainBed): ``y = xor(digit < 5, n)`` with label
noise ``n ~ Bernoulli(0.25)``; colour ``c = xor(y, f)`` with ``f ~ Bernoulli(e)`` where the
environment's colour-flip probability is ``e`` = 0.1, 0.2, 0.9 (names '+90%', '+80%', '-90%':
how often colour agrees with the label). ``x`` is [2, 28, 28]: the digit in channel ``c``, the
other channel zero (DomainBed keeps the full 28x28; the 14x14 subsampling of the IRM paper is
disabled in DomainBed's code). 2 classes.

Every environment is an :class:`MnistDomain` that keeps uint8 pixels (4x less memory than
float) and returns ``(float tensor [C, H, W] in [0, 1], int label)``.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import ClassVar

import torch
from torch.utils.data import Dataset

from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.errors import UserError
from dgsamp.registry import register_dataset

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
SHUFFLE_SEED = 0
HOW_TO_GET = (
    "DomainBed's `python -m domainbed.scripts.download --data_dir <root>` or "
    "torchvision.datasets.MNIST(<root>, download=True) (files go to <root>/MNIST/raw)"
)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError) as error:
        raise UserError(f"cannot read MNIST file {path}: {error}; download it again ({HOW_TO_GET})") from error


def read_idx(path: str | Path, expected_magic: int) -> torch.Tensor:
    """Decode an idx file (big-endian int32 magic, int32 sizes, then uint8 data).

    Images (magic 2051) give uint8 [N, rows, cols]; labels (magic 2049) give uint8 [N].
    A wrong magic number or a size that disagrees with the header is a UserError.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 8:
        raise UserError(f"MNIST file {path} is truncated ({len(data)} bytes); download it again ({HOW_TO_GET})")
    magic = int.from_bytes(data[0:4], "big")
    if magic != expected_magic:
        raise UserError(
            f"MNIST file {path} has magic number {magic}, expected {expected_magic}; "
            f"it is not an idx {'image' if expected_magic == IMAGES_MAGIC else 'label'} file"
        )
    num_dims = 3 if expected_magic == IMAGES_MAGIC else 1
    header_size = 4 + 4 * num_dims
    if len(data) < header_size:
        raise UserError(f"MNIST file {path} is truncated (header cut); download it again ({HOW_TO_GET})")
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(num_dims)]
    expected_size = header_size + int(torch.tensor(shape).prod())
    if len(data) != expected_size:
        raise UserError(
            f"MNIST file {path} is truncated or corrupt: {len(data)} bytes, header {shape} "
            f"needs {expected_size}; download it again ({HOW_TO_GET})"
        )
    body = bytearray(data[header_size:])
    return torch.frombuffer(body, dtype=torch.uint8).reshape(shape)


def _find_idx_file(raw_dir: Path, stem: str) -> Path:
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise UserError(f"MNIST file missing: {raw_dir / stem}[.gz]; get it with {HOW_TO_GET}")


def load_mnist(root: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """All 70,000 digits, train then test: uint8 images [70000, 28, 28] and labels int64 [70000]."""
    if root is None:
        raise UserError(f"MNIST datasets need --data_dir: the folder holding MNIST/raw; get it with {HOW_TO_GET}")
    raw_dir = Path(root) / "MNIST" / "raw"
    if not raw_dir.is_dir():
        raise UserError(f"MNIST folder not found: {raw_dir}; get it with {HOW_TO_GET}")
    images, labels = [], []
    for split in ("train", "t10k"):
        split_images = read_idx(_find_idx_file(raw_dir, f"{split}-images-idx3-ubyte"), IMAGES_MAGIC)
        split_labels = read_idx(_find_idx_file(raw_dir, f"{split}-labels-idx1-ubyte"), LABELS_MAGIC)
        if len(split_images) != len(split_labels):
            raise UserError(
                f"MNIST {split} files disagree: {len(split_images)} images, {len(split_labels)} labels"
            )
        images.append(split_images)
        labels.append(split_labels.long())
    return torch.cat(images), torch.cat(labels)


def shuffled_shards(
    images: torch.Tensor, labels: torch.Tensor, num_shards: int, generator: torch.Generator
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffle with ``generator`` and give shard ``i`` the items ``i::num_shards``."""
    order = torch.randperm(len(images), generator=generator)
    images, labels = images[order], labels[order]
    return [(images[i::num_shards], labels[i::num_shards]) for i in range(num_shards)]


def rotate_digits(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """uint8 [N, H, W] -> uint8 [N, 1, H, W] rotated counter-clockwise about the centre.

    Bilinear interpolation, zero fill, rounded back to uint8 as DomainBed's PIL round trip does.
    """
    import torchvision.transforms.functional as TF

    batch = images.unsqueeze(1)
    if degrees == 0:
        return batch.clone()
    return TF.rotate(batch, degrees, interpolation=TF.InterpolationMode.BILINEAR, fill=[0.0])


def color_digits(
    images: torch.Tensor, digits: torch.Tensor, flip_probability: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """ColoredMNIST for one environment: uint8 [N, 2, H, W] and binary labels int64 [N].

    y = (digit < 5) xor Bernoulli(0.25); colour c = y xor Bernoulli(flip_probability);
    the digit is written to channel c and the other channel is zero.
    """
    n = len(images)
    label_noise = torch.rand(n, generator=generator) < 0.25
    labels = (digits < 5) ^ label_noise
    color_flip = torch.rand(n, generator=generator) < flip_probability
    colors = (labels ^ color_flip).long()
    colored = torch.zeros(n, 2, *images.shape[1:], dtype=torch.uint8)
    colored[torch.arange(n), colors] = images
    return colored, labels.long()


class MnistDomain(Dataset):
    """One MNIST environment: uint8 pixels [N, C, H, W] and int64 labels [N]."""

    def __init__(self, name: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.name = name
        self.images = images
        self.label_tensor = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].float().div_(255.0), int(self.label_tensor[index])

    def take(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched items: float [len(indices), C, H, W] in [0, 1] and int64 labels."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.images[index].float().div_(255.0), self.label_tensor[index].clone()


class MultipleEnvironmentMNIST(MultiDomainDataset):
    IS_IMAGE = False
    SMALL_IMAGES = True
    DEFAULT_BACKBONE = "mnist_cnn"
    FIXED_BACKBONE = "mnist_cnn"
    NUM_CLASSES: ClassVar[int] = 10

    def __init__(self, root: str | Path | None) -> None:
        super().__init__(root)
        images, digits = load_mnist(root)
        generator = torch.Generator().manual_seed(SHUFFLE_SEED)
        shards = shuffled_shards(images, digits, len(self.ENVIRONMENTS), generator)
        self.datasets = [
            self.make_environment(name, shard_images, shard_digits, generator)
            for name, (shard_images, shard_digits) in zip(self.ENVIRONMENTS, shards)
        ]
        self.classes = [str(k) for k in range(self.NUM_CLASSES)]
        channels, height, width = self.datasets[0].images.shape[1:]
        self.input_shape = (channels, height, width)

    def make_environment(
        self, name: str, images: torch.Tensor, digits: torch.Tensor, generator: torch.Generator
    ) -> MnistDomain:
        raise NotImplementedError


@register_dataset("RotatedMNIST")
class RotatedMNIST(MultipleEnvironmentMNIST):
    ENVIRONMENTS = ["0", "15", "30", "45", "60", "75"]
    ENVIRONMENT_SHORT_NAMES = ["0", "15", "30", "45", "60", "75"]

    def make_environment(self, name, images, digits, generator) -> MnistDomain:
        return MnistDomain(name, rotate_digits(images, float(name)), digits.clone())


@register_dataset("ColoredMNIST")
class ColoredMNIST(MultipleEnvironmentMNIST):
    ENVIRONMENTS = ["+90%", "+80%", "-90%"]
    ENVIRONMENT_SHORT_NAMES = ["+90%", "+80%", "-90%"]
    COLOR_FLIP_PROBABILITY: ClassVar[dict[str, float]] = {"+90%": 0.1, "+80%": 0.2, "-90%": 0.9}
    NUM_CLASSES = 2

    def make_environment(self, name, images, digits, generator) -> MnistDomain:
        colored, labels = color_digits(images, digits, self.COLOR_FLIP_PROBABILITY[name], generator)
        return MnistDomain(name, colored, labels)
