"""Batched augmentation on real PACS images: reproducibility, DomainBed's parameters, exact eval."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision import transforms

from dgsamp.data.augment import (
    BatchTransform,
    IdentityTransform,
    color_jitter,
    constant,
    crop_flip_theta,
    hue_shift,
    random_grayscale,
    random_resized_crop_flip,
)
from dgsamp.data.training_data import materialize
from dgsamp.data.transforms import make_transforms
from dgsamp.datasets.images import PACSMini

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def pacs_batch() -> torch.Tensor:
    """16 real PACS photos and sketches, uint8 [16, 3, 96, 96]."""
    dataset = PACSMini()
    photos = materialize(dataset[2], range(0, 175, 22), size=96).x
    sketches = materialize(dataset[3], range(0, 175, 22), size=96).x
    return torch.cat([photos, sketches])


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("device", DEVICES)
def test_augment_is_reproducible_and_seed_dependent(pacs_batch, device):
    transform = BatchTransform(MEAN, STD, augment=True)
    x = pacs_batch.to(device)
    first = transform(x, generator(0))
    again = transform(x, generator(0))
    other = transform(x, generator(1))
    assert first.shape == (16, 3, 96, 96) and first.dtype == torch.float32
    assert first.device.type == device
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    # Every sample changed: crop/flip/jitter are drawn per sample.
    plain = BatchTransform(MEAN, STD, augment=False)(x)
    assert ((first - plain).abs().flatten(1).mean(1) > 1e-3).all()


def test_output_size_and_channels_last(pacs_batch):
    transform = BatchTransform(MEAN, STD, augment=True, size=64, memory_format=torch.channels_last)
    out = transform(pacs_batch, generator(0))
    assert out.shape == (16, 3, 64, 64)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_eval_transform_equals_totensor_normalize(pacs_batch):
    """Eval = torchvision's ToTensor + Normalize on the same pixels, exactly."""
    transform = BatchTransform(MEAN, STD, augment=False)
    ours = transform(pacs_batch)
    reference = transforms.Compose([transforms.ToPILImage(), transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    expected = torch.stack([reference(image) for image in pacs_batch])
    assert torch.allclose(ours, expected, atol=1e-6, rtol=0)


def test_normalisation_of_black_images_survives_augmentation():
    """Crop, flip, jitter and grayscale all keep black black, so the output is -mean/std."""
    black = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    out = BatchTransform(MEAN, STD, augment=True)(black, generator(5))
    expected = (-torch.tensor(MEAN) / torch.tensor(STD)).view(1, 3, 1, 1).expand_as(out)
    assert torch.allclose(out, expected, atol=1e-6)


def test_crop_parameters_follow_random_resized_crop():
    theta = crop_flip_theta(4000, 224, 224, generator(0), torch.device("cpu"))
    width_fraction, height_fraction = theta[:, 0, 0].abs(), theta[:, 1, 1]
    area = width_fraction * height_fraction
    aspect = width_fraction / height_fraction
    rounding = 2 / 224  # sides are rounded to whole pixels
    assert area.min() >= 0.7 - rounding and area.max() <= 1.0
    assert aspect.min() >= 3 / 4 - rounding and aspect.max() <= 4 / 3 + rounding
    # Crops stay inside the image: centre +- half-size within [-1, 1].
    assert ((theta[:, 0, 2].abs() + width_fraction) <= 1 + 1e-5).all()
    assert ((theta[:, 1, 2].abs() + height_fraction) <= 1 + 1e-5).all()
    flipped = (theta[:, 0, 0] < 0).float().mean().item()
    assert abs(flipped - 0.5) < 0.04  # 4000 coin flips: sd 0.008


def test_crop_resamples_like_torchvision_resized_crop(pacs_batch):
    images = pacs_batch.float() / 255
    size = 96
    out = random_resized_crop_flip(images, size, generator(3))
    theta = crop_flip_theta(len(images), size, size, generator(3), images.device)
    checked = 0
    for index in range(len(images)):
        scale_x, center_x = theta[index, 0, 0].item(), theta[index, 0, 2].item()
        scale_y, center_y = theta[index, 1, 1].item(), theta[index, 1, 2].item()
        width, height = round(abs(scale_x) * size), round(scale_y * size)
        left = round((center_x + 1 - abs(scale_x)) * size / 2)
        top = round((center_y + 1 - scale_y) * size / 2)
        expected = TF.resized_crop(images[index], top, left, height, width, [size, size], antialias=False)
        if scale_x < 0:
            expected = TF.hflip(expected)
        # Inside the crop the resampling is identical. In the outermost output pixels torchvision
        # clamps to the crop's edge while grid_sample reads the real neighbouring pixels.
        assert torch.allclose(out[index, :, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-5), index
        assert (out[index] - expected).abs().max() < 0.1
        checked += 1
    assert checked == 16


def test_color_jitter_keeps_greys_grey_and_changes_colours(pacs_batch):
    """Brightness/contrast act on all channels alike; saturation and hue fix the grey axis."""
    grey_levels = torch.linspace(0.1, 0.9, 64).view(64, 1, 1, 1)
    greys = grey_levels.expand(64, 3, 8, 8) * torch.rand(64, 1, 8, 8, generator=generator(0))
    jittered = color_jitter(greys, generator(1))
    assert torch.allclose(jittered[:, 0], jittered[:, 1], atol=1e-5)
    assert torch.allclose(jittered[:, 1], jittered[:, 2], atol=1e-5)
    colours = pacs_batch[:8].float() / 255
    jittered = color_jitter(colours, generator(2))
    assert jittered.min() >= 0 and jittered.max() <= 1
    ratio = jittered.mean(dim=(1, 2, 3)) / colours.mean(dim=(1, 2, 3))
    assert ((ratio > 0.5) & (ratio < 1.8)).all()
    assert not torch.allclose(jittered, colours, atol=1e-2)


def test_color_jitter_equals_torchvision_ops_in_the_drawn_order(pacs_batch):
    """Replay the generator's draws (factors, then per-sample order) through torchvision."""
    photos = pacs_batch.float() / 255
    ours = color_jitter(photos, generator(9))
    replay = generator(9)
    brightness, contrast, saturation = (0.7 + 0.6 * torch.rand(16, generator=replay) for _ in range(3))
    hue = -0.3 + 0.6 * torch.rand(16, generator=replay)
    order = torch.argsort(torch.rand(16, 4, generator=replay), dim=1)
    operations = [
        lambda image, i: TF.adjust_brightness(image, brightness[i].item()),
        lambda image, i: TF.adjust_contrast(image, contrast[i].item()),
        lambda image, i: TF.adjust_saturation(image, saturation[i].item()),
        lambda image, i: TF.adjust_hue(image, hue[i].item()),
    ]
    for i, image in enumerate(photos):
        for op in order[i].tolist():
            image = operations[op](image, i)
        assert torch.allclose(ours[i], image, atol=1e-4), i


def test_hue_shift_equals_torchvision_adjust_hue(pacs_batch):
    photos = pacs_batch.float() / 255
    shifts = torch.linspace(-0.3, 0.3, len(photos))
    ours = hue_shift(photos, shifts)
    for image, shift, shifted in zip(photos, shifts, ours):
        assert torch.allclose(shifted, TF.adjust_hue(image, shift.item()), atol=1e-5)
    assert (ours - photos).abs().mean() > 0.01


def test_random_grayscale_rate():
    colours = torch.rand(3000, 3, 2, 2, generator=generator(0))
    out = random_grayscale(colours, generator(1))
    grey = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert abs(grey.float().mean().item() - 0.1) < 0.02  # sd 0.0055
    untouched = ~grey
    assert torch.allclose(out[untouched], colours[untouched], atol=1e-6)


def test_identity_for_tensor_datasets_and_input_checks():
    features = torch.rand(5, 2, 28, 28)
    transform = make_transforms((2, 28, 28), False, MEAN, STD, True, 28, "domainbed").train
    assert isinstance(transform, IdentityTransform)
    assert torch.equal(transform(features, generator(0)), features)
    image_transform = make_transforms((3, 8, 8), True, MEAN, STD, True, 8, "domainbed").train
    with pytest.raises(ValueError, match="uint8"):
        image_transform(features, generator(0))
    with pytest.raises(ValueError, match="Generator"):
        image_transform(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_constants_are_built_once_per_device_and_dtype(pacs_batch):
    """Steady-state calls reuse the cached mean/std/gray tensors (no host-to-device copy)."""
    transform = BatchTransform(MEAN, STD, augment=True)
    transform(pacs_batch, generator(0))
    hits_before = constant.cache_info().hits
    misses_before = constant.cache_info().misses
    transform(pacs_batch, generator(1))
    assert constant.cache_info().misses == misses_before
    assert constant.cache_info().hits > hits_before
    cpu = torch.device("cpu")
    assert constant(MEAN, cpu, torch.float32) is constant(MEAN, cpu, torch.float32)
    assert constant(MEAN, cpu, torch.float64).dtype == torch.float64


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_augmentation_with_cuda_generator_never_synchronises(pacs_batch):
    """The trainer's call: uint8 batch and generator both on the GPU; any host sync raises."""
    x = pacs_batch.cuda()
    transform = BatchTransform(MEAN, STD, augment=True, size=64, memory_format=torch.channels_last)
    cuda_generator = torch.Generator(device="cuda")
    transform(x, cuda_generator.manual_seed(0))  # first call fills the constant cache
    torch.cuda.set_sync_debug_mode("error")
    try:
        first = transform(x, cuda_generator.manual_seed(0))
        again = transform(x, cuda_generator.manual_seed(0))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert first.device.type == "cuda" and torch.equal(first, again)
