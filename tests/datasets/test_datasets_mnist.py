"""RotatedMNIST, ColoredMNIST and the idx reader on the real MNIST files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dgsamp.datasets.mnist import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    SHUFFLE_SEED,
    ColoredMNIST,
    RotatedMNIST,
    load_mnist,
    read_idx,
    shuffled_shards,
)
from dgsamp.errors import UserError
from dgsamp.registry import create_dataset
from tests.helpers import shared_data_dir


@pytest.fixture(scope="module")
def mnist_raw() -> Path:
    """``../shared/data/MNIST/raw`` (the four IDX files), or skip."""
    return shared_data_dir("MNIST", "raw")


@pytest.fixture(scope="module")
def mnist_root(mnist_raw) -> Path:
    """The ``--data_dir`` holding ``MNIST/raw``."""
    return mnist_raw.parents[1]


@pytest.fixture(scope="module")
def mnist(mnist_root):
    return load_mnist(mnist_root)


@pytest.fixture(scope="module")
def rotated(mnist_root):
    return create_dataset("RotatedMNIST", mnist_root)


@pytest.fixture(scope="module")
def colored(mnist_root):
    return create_dataset("ColoredMNIST", mnist_root)


def raw_shards(mnist, num_envs):
    """The digits each environment was built from (same seed, same dealing)."""
    images, digits = mnist
    return shuffled_shards(images, digits, num_envs, torch.Generator().manual_seed(SHUFFLE_SEED))


def orientation_degrees(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal-axis angle (counter-clockwise, y up) and eccentricity of each [H, W] image."""
    mass = images.float()
    _, height, width = mass.shape
    ys = -(torch.arange(height).float() - (height - 1) / 2).view(1, height, 1)
    xs = (torch.arange(width).float() - (width - 1) / 2).view(1, 1, width)
    total = mass.sum((1, 2))
    dx = xs - ((mass * xs).sum((1, 2)) / total).view(-1, 1, 1)
    dy = ys - ((mass * ys).sum((1, 2)) / total).view(-1, 1, 1)
    mu20 = (mass * dx * dx).sum((1, 2)) / total
    mu02 = (mass * dy * dy).sum((1, 2)) / total
    mu11 = (mass * dx * dy).sum((1, 2)) / total
    angle = torch.rad2deg(0.5 * torch.atan2(2 * mu11, mu20 - mu02))
    eccentricity = torch.sqrt((mu20 - mu02) ** 2 + 4 * mu11**2) / (mu20 + mu02)
    return angle, eccentricity


def test_load_mnist_concatenates_train_and_test(mnist):
    images, digits = mnist
    assert images.shape == (70000, 28, 28) and images.dtype == torch.uint8
    assert digits.shape == (70000,) and digits.dtype == torch.int64
    assert np.bincount(digits.numpy()).tolist()[:2] == [5923 + 980, 6742 + 1135]


def test_rotated_mnist_sizes_and_items(rotated):
    assert rotated.environments == ["0", "15", "30", "45", "60", "75"]
    assert [len(env) for env in rotated.datasets] == [11667] * 4 + [11666] * 2
    assert rotated.input_shape == (1, 28, 28) and rotated.num_classes == 10
    assert not rotated.IS_IMAGE and rotated.SMALL_IMAGES and rotated.DEFAULT_BACKBONE == "mnist_cnn"
    x, y = rotated[3][7]
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28)
    assert x.min() >= 0.0 and x.max() <= 1.0 and isinstance(y, int) and 0 <= y <= 9


def test_rotation_angles_are_applied(rotated, mnist):
    """Each digit's principal axis turns counter-clockwise by the environment's angle."""
    for env_index, (raw_images, raw_digits) in enumerate(raw_shards(mnist, 6)):
        env = rotated[env_index]
        assert torch.equal(env.label_tensor, raw_digits)
        angle = float(rotated.environments[env_index])
        before, eccentricity = orientation_degrees(raw_images[:3000])
        after, _ = orientation_degrees(env.images[:3000, 0])
        turn = (after - before + 90) % 180 - 90
        elongated = eccentricity > 0.5
        assert elongated.sum() > 1200
        assert abs(turn[elongated].median().item() - angle) < 0.5


def test_rotation_matches_domainbeds_pil_rotate(rotated, mnist):
    """DomainBed rotates each digit with PIL (bilinear, fill 0); we rotate the batch at once."""
    raw_images, _ = raw_shards(mnist, 6)[2]
    ours = rotated[2].images[:200, 0].int()
    pil = torch.stack([
        torch.from_numpy(np.array(Image.fromarray(image.numpy()).rotate(30, Image.Resampling.BILINEAR)))
        for image in raw_images[:200]
    ]).int()
    assert (ours - pil).abs().float().mean() < 0.5  # grey levels out of 255
    assert torch.equal(rotated[0].images[:, 0], raw_shards(mnist, 6)[0][0])


def test_colored_mnist_label_and_colour_statistics(colored, mnist):
    assert colored.environments == ["+90%", "+80%", "-90%"]
    assert [len(env) for env in colored.datasets] == [23334, 23333, 23333]
    assert colored.input_shape == (2, 28, 28) and colored.num_classes == 2
    for env, (_, digits), colour_agrees in zip(colored.datasets, raw_shards(mnist, 3), [0.9, 0.8, 0.1]):
        channel_mass = env.images.float().sum(dim=(2, 3))  # [N, 2]
        assert ((channel_mass > 0).sum(dim=1) == 1).all()  # the digit sits in exactly one channel
        colour = channel_mass.argmax(dim=1)
        labels = env.label_tensor
        assert set(labels.unique().tolist()) == {0, 1}
        # ~23,333 draws: 0.012 is > 4 standard deviations of each proportion.
        assert abs((colour == labels).float().mean().item() - colour_agrees) < 0.012
        assert abs((labels == (digits < 5).long()).float().mean().item() - 0.75) < 0.012
        x, y = env[0]
        assert x.shape == (2, 28, 28) and x.dtype == torch.float32 and y in (0, 1)


def test_colored_mnist_is_deterministic(colored, mnist_root):
    again = ColoredMNIST(mnist_root)
    for first, second in zip(colored.datasets, again.datasets):
        assert torch.equal(first.images, second.images)
        assert torch.equal(first.label_tensor, second.label_tensor)


def test_idx_reader_plain_and_gz(tmp_path, mnist_raw):
    plain = tmp_path / "t10k-labels-idx1-ubyte"
    with gzip.open(mnist_raw / "t10k-labels-idx1-ubyte.gz", "rb") as source:
        plain.write_bytes(source.read())
    from_gz = read_idx(mnist_raw / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)
    from_plain = read_idx(plain, LABELS_MAGIC)
    assert from_gz.shape == (10000,) and torch.equal(from_gz, from_plain)
    assert from_gz[:5].tolist() == [7, 2, 1, 0, 4]  # the first MNIST test digits
    images = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8


def test_load_mnist_mixes_plain_and_gz_files(tmp_path, mnist, mnist_raw):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (raw / name).symlink_to(mnist_raw / name)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(mnist_raw / f"{name}.gz", "rb") as source, open(raw / name, "wb") as target:
            shutil.copyfileobj(source, target)
    images, digits = load_mnist(tmp_path)
    assert torch.equal(images, mnist[0]) and torch.equal(digits, mnist[1])


def test_truncated_wrong_and_missing_files_are_user_errors(tmp_path, mnist_raw):
    with gzip.open(mnist_raw / "t10k-labels-idx1-ubyte.gz", "rb") as source:
        data = source.read()
    truncated = tmp_path / "t10k-labels-idx1-ubyte"
    truncated.write_bytes(data[:-100])
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte is truncated"):
        read_idx(truncated, LABELS_MAGIC)
    cut_gz = tmp_path / "cut.gz"
    cut_gz.write_bytes((mnist_raw / "t10k-labels-idx1-ubyte.gz").read_bytes()[:2000])
    with pytest.raises(UserError, match=r"cut\.gz"):
        read_idx(cut_gz, LABELS_MAGIC)
    with pytest.raises(UserError, match=r"magic number 2049, expected 2051"):
        read_idx(mnist_raw / "t10k-labels-idx1-ubyte.gz", IMAGES_MAGIC)
    with pytest.raises(UserError, match=r"MNIST/raw"):
        RotatedMNIST(tmp_path)
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte\[\.gz\]"):
        ColoredMNIST(tmp_path)
    with pytest.raises(UserError, match=r"--data_dir"):
        RotatedMNIST(None)
