"""A ``--plugin`` for CPU-sized DA evidence: RotatedMNIST's 0° and 75° domains alone.

``RotatedMNIST0to75`` registers two domains, ``0`` and ``75``, holding the images of
RotatedMNIST's domains 0 and 5 (DomainBed's shuffled shards ``i::6`` of MNIST's 70,000
digits, same shuffle seed, same bilinear rotation), of which every ``KEEP_EVERY``-th is kept:
2,917 + 2,917 digits instead of the 70,000 of all six domains. Training on ``--source 0
--target 75`` sees the same kind of data as on RotatedMNIST; each evaluation scores about a
twenty-fourth of the images, which is what makes a few dozen runs fit on two shared CPU cores
(every split of every domain is scored at each evaluation). The in/out split differs from
RotatedMNIST's (it is seeded by the trial seed and the domain's index, here 0 and 1).

Usage: ``dgsamp train --plugin benchmarks/rotated_mnist_pair.py --dataset RotatedMNIST0to75
--source 0 --target 75 ...`` (and the same ``--plugin`` for ``dgsamp leaderboard``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.datasets.mnist import (
    SHUFFLE_SEED,
    MnistDomain,
    RotatedMNIST,
    load_mnist,
    rotate_digits,
    shuffled_shards,
)
from dgsamp.registry import DATASETS, register_dataset

KEEP_EVERY = 4
NAME = "RotatedMNIST0to75"


class RotatedMNIST0to75(RotatedMNIST):
    """Domains ``0`` and ``75`` of RotatedMNIST, every ``KEEP_EVERY``-th digit; x uint8 [1, 28, 28]."""

    ENVIRONMENTS = ["0", "75"]
    ENVIRONMENT_SHORT_NAMES = ["0", "75"]

    def __init__(self, root: str | Path | None) -> None:
        MultiDomainDataset.__init__(self, root)
        images, digits = load_mnist(root)
        generator = torch.Generator().manual_seed(SHUFFLE_SEED)
        shards = shuffled_shards(images, digits, len(RotatedMNIST.ENVIRONMENTS), generator)
        self.datasets = []
        for name in self.ENVIRONMENTS:
            shard_images, shard_digits = shards[RotatedMNIST.ENVIRONMENTS.index(name)]
            kept_images, kept_digits = shard_images[::KEEP_EVERY], shard_digits[::KEEP_EVERY]
            self.datasets.append(MnistDomain(name, rotate_digits(kept_images, float(name)), kept_digits.clone()))
        self.classes = [str(k) for k in range(self.NUM_CLASSES)]
        self.input_shape = tuple(self.datasets[0].images.shape[1:])


if NAME not in DATASETS.names():  # a plugin may be imported twice (train, then leaderboard)
    register_dataset(NAME)(RotatedMNIST0to75)
