"""Everything a run reads, in tensors: each domain decoded once, split, drawn in minibatches.

Decoding (``materialize``): image domains (items ``(PIL.Image, label)``) become ``x`` uint8
[N, 3, S, S]: every image is resized straight to S x S with PIL's antialiased bilinear filter
(what DomainBed's ``Resize((224, 224))`` does on PIL images); normalisation and augmentation
happen later on the batch (dgsamp.data.augment). Tensor domains (MNIST family) become their
float stack [N, C, H, W]. ``y`` is int64 [N]. Memory: N * 3 * S * S bytes, e.g. 9,991 PACS
images at 224 px: 1.5 GB. Training and evaluation never touch files again.

Splitting (``load_training_data``): by index, DomainBed's in/out protocol
(``dgsamp.data.splits``). Batches (``DomainBatches``): training draws per-domain minibatches
from a fresh seeded permutation of the domain's in-split on every pass; the largest training
domain sets the epoch length, ``ceil(max_i |in_i| / batch_size)`` steps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from dgsamp.data.splits import Splits, make_splits
from dgsamp.errors import UserError


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


class DomainBatches:
    """Endless minibatches ``(x[B, ...], y[B])`` from one domain, without replacement per pass."""

    def __init__(self, data: DomainTensors, batch_size: int, generator: torch.Generator) -> None:
        if len(data) == 0:
            raise ValueError("cannot draw batches from an empty split")
        self.data = data
        self.batch_size = batch_size
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.int64)
        self._position = 0

    @property
    def steps_per_pass(self) -> int:
        """Batches in one pass over the domain, ``ceil(N / batch_size)``."""
        return math.ceil(len(self.data) / self.batch_size)

    def next(self) -> tuple[Tensor, Tensor]:
        chunks = []
        needed = self.batch_size
        while needed > 0:
            if self._position >= len(self._order):
                self._order = torch.randperm(len(self.data), generator=self.generator, device=self.generator.device)
                self._position = 0
            take = self._order[self._position : self._position + needed]
            self._position += len(take)
            needed -= len(take)
            chunks.append(take)
        indices = torch.cat(chunks).to(self.data.x.device, non_blocking=True)
        return self.data.batch(indices)

    def state_dict(self) -> dict:
        return {"order": self._order, "position": self._position}

    def load_state_dict(self, state: dict) -> None:
        self._order = state["order"].to(self.generator.device)
        self._position = state["position"]


@dataclass
class TrainingData:
    """Decoded splits of one run. ``eval_splits`` keys follow DomainBed: ``env{i}_in``/``_out``."""

    splits: Splits
    train: list[DomainTensors]  # in-split of every training domain, in domain order
    unlabeled: list[DomainTensors]  # domain adaptation: the test domains' unlabeled data
    eval_splits: dict[str, DomainTensors]  # env{i}_in, env{i}_out (and env{i}_uda: DomainBed's uda split)
    num_classes: int


def load_training_data(
    dataset,
    test_envs: list[int],
    holdout_fraction: float,
    trial_seed: int,
    task: str,
    resolution: int | None,
    device: torch.device,
    num_threads: int,
    uda_holdout_fraction: float = 0.0,
    unlabeled_split: str = "test_in",
    source_envs: list[int] | None = None,
) -> TrainingData:
    """Decode every domain once and index it into DomainBed's splits, on ``device``.

    Under ``unlabeled_split="uda"`` a test domain's uda split is also evaluated (``env{i}_uda``,
    as DomainBed's train.py does); in domain adaptation it feeds the unlabeled batches.
    """
    if dataset.IS_IMAGE and resolution is not None:
        sizes = [len(dataset[env]) for env in range(len(dataset))]
        check_cache_fits(sizes, resolution, device, available_bytes(device))
    splits = make_splits(dataset, test_envs, holdout_fraction, trial_seed, task, uda_holdout_fraction,
                         unlabeled_split, source_envs)
    train, unlabeled, eval_splits = [], [], {}
    for env in range(len(dataset)):
        whole = materialize(dataset[env], np.arange(len(dataset[env])), resolution, num_threads)
        whole = whole.to(device)

        def part(indices: np.ndarray, whole: DomainTensors = whole) -> DomainTensors:
            index = torch.from_numpy(np.asarray(indices, dtype=np.int64)).to(device)
            return DomainTensors(*whole.batch(index))

        for name, indices in (("in", splits.in_indices[env]), ("out", splits.out_indices[env])):
            if len(indices) == 0:
                raise UserError(
                    f"domain {env} of {type(dataset).__name__} has only {len(whole)} items: its {name} split "
                    f"is empty with --holdout_fraction {holdout_fraction}"
                )
            eval_splits[f"env{env}_{name}"] = part(indices)
        if env in splits.train_envs:
            train.append(eval_splits[f"env{env}_in"])
        if env in splits.unlabeled:
            if len(splits.unlabeled[env]) == 0:
                raise UserError(
                    f"domain {env} of {type(dataset).__name__} gets no unlabeled items with "
                    f"--uda_holdout_fraction {uda_holdout_fraction}; raise it"
                )
            same_as_in = np.array_equal(splits.unlabeled[env], splits.in_indices[env])
            target = eval_splits[f"env{env}_in"] if same_as_in else part(splits.unlabeled[env])
            if unlabeled_split == "uda":
                eval_splits[f"env{env}_uda"] = target
            if task == "domain_adaptation":
                unlabeled.append(target)
    return TrainingData(splits, train, unlabeled, eval_splits, dataset.num_classes)


def cache_bytes(domain_sizes: list[int], resolution: int) -> int:
    """Peak bytes of the decode-once cache: every split (N x 3 x S x S uint8) plus the largest
    domain decoded whole before it is split."""
    per_image = 3 * resolution * resolution
    return (sum(domain_sizes) + max(domain_sizes)) * per_image


def available_bytes(device: torch.device) -> int | None:
    """Free memory where the cache will live (None when it cannot be told): on the CPU the
    kernel's MemAvailable, which counts reclaimable page cache as free (as the batch check of
    ``dgsamp.training.memory`` does), not MemFree."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        return next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def check_cache_fits(domain_sizes: list[int], resolution: int, device: torch.device, free: int | None) -> None:
    """Refuse, before decoding anything, a cache that would not fit in ``free`` bytes."""
    needed = cache_bytes(domain_sizes, resolution)
    if free is None or needed <= 0.9 * free:
        return
    where = "GPU" if device.type == "cuda" else "RAM"
    hint = "use --data_cache cpu" if device.type == "cuda" else "use a smaller --resolution"
    raise UserError(
        f"decoding {sum(domain_sizes)} images at {resolution} px needs {needed / 1e9:.1f} GB of {where}, "
        f"{free / 1e9:.1f} GB are free; {hint}"
    )
