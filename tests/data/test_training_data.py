"""Decode-once data: the cache-size check, minibatch order and the DA reuse of the in-split."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from dgsamp.data.training_data import (
    DomainBatches,
    DomainTensors,
    available_bytes,
    cache_bytes,
    check_cache_fits,
    load_training_data,
)
from dgsamp.errors import UserError
from dgsamp.registry import create_dataset


def test_cache_check_refuses_what_does_not_fit_before_decoding():
    sizes = [2048, 2344, 1670, 3929]  # PACS
    assert cache_bytes(sizes, 224) == (sum(sizes) + 3929) * 3 * 224 * 224
    check_cache_fits(sizes, 224, torch.device("cpu"), free=10 * 10**9)  # 2.1 GB fits
    check_cache_fits(sizes, 224, torch.device("cpu"), free=None)  # unknown: no check
    with pytest.raises(UserError, match=r"needs 2\.1 GB of RAM, 1\.0 GB are free; use a smaller --resolution"):
        check_cache_fits(sizes, 224, torch.device("cpu"), free=10**9)
    with pytest.raises(UserError, match="use --data_cache cpu"):
        check_cache_fits(sizes, 224, torch.device("cuda"), free=10**9)


def mem_available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable line")


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="reads Linux's /proc/meminfo")
def test_free_ram_is_memavailable_so_page_cache_counts_as_free():
    """The cache check's free RAM is the kernel's MemAvailable (page cache is reclaimable), the
    figure the batch check uses too; it once read MemFree and refused on a box full of cache."""
    before = mem_available_bytes()
    free = available_bytes(torch.device("cpu"))
    after = mem_available_bytes()
    slack = 64 * 2**20  # what other processes may allocate or free between the reads
    assert min(before, after) - slack <= free <= max(before, after) + slack


def test_domain_batches_cover_every_item_once_per_pass_and_resume_exactly():
    data = DomainTensors(torch.arange(10).view(10, 1), torch.arange(10))
    batches = DomainBatches(data, 4, torch.Generator().manual_seed(0))
    first_pass = torch.cat([batches.next()[1] for _ in range(2)] + [batches.next()[1][:2]])
    assert sorted(first_pass.tolist()) == list(range(10))
    state = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in batches.state_dict().items()}
    generator_state = batches.generator.get_state()
    expected = [batches.next()[1].tolist() for _ in range(3)]
    resumed = DomainBatches(data, 4, torch.Generator())
    resumed.generator.set_state(generator_state)
    resumed.load_state_dict(state)
    assert [resumed.next()[1].tolist() for _ in range(3)] == expected


def test_domain_adaptation_reuses_the_test_in_split_without_copying():
    dataset = create_dataset("PACSMini", None)
    data = load_training_data(dataset, [0], 0.2, 0, "domain_adaptation", 32, torch.device("cpu"), 2)
    assert len(data.train) == 3 and len(data.unlabeled) == 1
    assert data.unlabeled[0] is data.eval_splits["env0_in"]
    assert len(data.eval_splits["env0_in"]) == 140 and len(data.eval_splits["env0_out"]) == 35
