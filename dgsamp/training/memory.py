"""Refuse, before training, a batch that cannot fit in memory (one line naming the flag).

One training step keeps every activation the backward pass needs. Their size is measured,
not guessed: a forward pass of a copy of the featurizer on two examples records the bytes
of every tensor autograd saves (parameters excluded), so

    step bytes ≈ saved bytes per example × batch_size × batches per step

where a step draws one batch per training domain (plus one per target domain in domain
adaptation). The run stops with a UserError when that exceeds the free memory of the
device. The probe runs on a deep copy under a forked RNG, so the run's numbers do not
depend on it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dgsamp.errors import UserError

HEADROOM = 0.9  # share of the free memory a step may use


def saved_bytes_per_example(featurizer: nn.Module, example: torch.Tensor) -> int:
    """Bytes autograd saves for backward per input example (``example``: [C, H, W] or [D])."""
    probe = copy.deepcopy(featurizer).train()
    parameters = {p.data_ptr() for p in probe.parameters()}
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if tensor.data_ptr() not in parameters:
            saved += tensor.numel() * tensor.element_size()
        return tensor

    batch = torch.stack([example, example])
    devices = [batch.device] if batch.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        probe(batch)
    return saved // 2


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` (MemAvailable for the CPU); None when it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_batch_fits(featurizer: nn.Module, example: torch.Tensor, batch_size: int, batches_per_step: int,
                     device: torch.device, free: int | None = None) -> None:
    """Raise UserError when one step's activations would not fit in ``free`` bytes."""
    free = free_memory_bytes(device) if free is None else free
    if free is None:
        return
    per_example = saved_bytes_per_example(featurizer, example)
    needed = per_example * batch_size * batches_per_step
    if needed <= HEADROOM * free:
        return
    largest = max(1, int(HEADROOM * free // max(1, per_example * batches_per_step)))
    raise UserError(
        f"--batch_size {batch_size} does not fit: one step keeps about {needed / 2**30:.1f} GiB of activations "
        f"({batches_per_step} batches of {batch_size}, {per_example / 2**20:.2f} MiB per example) and "
        f"{free / 2**30:.1f} GiB of {device.type} memory is free; use --batch_size {largest} or less "
        "(or a smaller --resolution)"
    )
