"""Decoding splits once into tensors, on real PACS files and real MNIST digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset
from torchvision import transforms

from dgsamp.data.training_data import DomainTensors, materialize
from dgsamp.datasets.images import PACS
from dgsamp.datasets.mnist import IMAGES_MAGIC, LABELS_MAGIC, MnistDomain, read_idx
from dgsamp.errors import UserError
from tests.helpers import shared_data_dir


@pytest.fixture(scope="module")
def pacs_sample():
    return PACS(shared_data_dir("pacs_original_sample"))


def test_images_resized_like_domainbeds_resize(pacs_sample):
    sketches = pacs_sample[3]  # real .png files, 227 x 227
    indices = [5, 0, 69, 12]
    tensors = materialize(sketches, indices, size=224)
    assert tensors.x.shape == (4, 3, 224, 224) and tensors.x.dtype == torch.uint8
    assert tensors.y.dtype == torch.int64
    assert tensors.y.tolist() == [sketches.samples[i][1] for i in indices]
    resize = transforms.Resize((224, 224))  # DomainBed's eval transform before ToTensor
    for row, index in enumerate(indices):
        expected = torch.from_numpy(np.array(resize(sketches[index][0]))).permute(2, 0, 1)
        assert torch.equal(tensors.x[row], expected)


def test_thread_pool_keeps_order(pacs_sample):
    photos = pacs_sample[2]
    indices = np.random.RandomState(0).permutation(len(photos))
    serial = materialize(photos, indices, size=48, num_threads=1)
    parallel = materialize(photos, indices, size=48, num_threads=4)
    assert torch.equal(serial.x, parallel.x) and torch.equal(serial.y, parallel.y)
    assert len(serial) == 70
    assert serial.y.tolist() == [photos.samples[i][1] for i in indices]


def test_corrupt_image_error_reaches_the_caller(tmp_path, pacs_sample):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not really a jpeg" * 8)
    domain = pacs_sample[0]
    domain_with_broken = type(domain)("art_painting", [*domain.samples[:3], (broken, 0)], domain.classes)
    with pytest.raises(UserError, match=r"broken\.jpg"):
        materialize(domain_with_broken, range(4), size=32, num_threads=2)


def test_tensor_domains_are_indexed_in_one_go():
    raw = shared_data_dir("MNIST", "raw")
    images = read_idx(raw / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)[:500]
    labels = read_idx(raw / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)[:500].long()
    domain = MnistDomain("0", images.unsqueeze(1), labels)
    indices = [499, 3, 3, 100]
    tensors = materialize(domain, indices, size=None)
    assert tensors.x.shape == (4, 1, 28, 28) and tensors.x.dtype == torch.float32
    assert torch.equal(tensors.x, images[indices].unsqueeze(1).float() / 255)
    assert tensors.y.tolist() == labels[indices].tolist()
    as_tensor_dataset = TensorDataset(images.unsqueeze(1).float() / 255, labels)
    same = materialize(as_tensor_dataset, indices, size=None)
    assert torch.equal(same.x, tensors.x) and torch.equal(same.y, tensors.y)


def test_domain_tensors_checks_lengths_and_moves():
    with pytest.raises(ValueError, match="3 items but y has 2"):
        DomainTensors(torch.zeros(3, 1), torch.zeros(2, dtype=torch.int64))
    tensors = DomainTensors(torch.arange(6).view(3, 2), torch.tensor([2, 0, 1]))
    moved = tensors.to("cpu")
    x, y = moved.batch(torch.tensor([2, 0]))
    assert x.tolist() == [[4, 5], [0, 1]] and y.tolist() == [1, 2]
