"""Online evaluation of a test-time adaptation method on one domain split.

    result = adapt_on_stream(make_adapter, split, transform, batch_size=32, seed=7, autocast=nullcontext())

The split's items arrive once, in the order of ``torch.randperm(N)`` drawn from a generator
seeded by ``seed`` (a fixed, reproducible stream), in batches of ``batch_size`` (the last
may be smaller). A fresh adapter (``make_adapter()``) predicts each batch and adapts to it;
accuracy counts those predictions, so every prediction was made before the method saw any
later item. FLOPs of every batch are counted (``dgsamp.metering.flops``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from dgsamp.adaptation.base import TestTimeAdapter
from dgsamp.data.training_data import DomainTensors
from dgsamp.metering.flops import count_flops


@dataclass(frozen=True)
class StreamResult:
    """``accuracy``: fraction of the stream predicted right; ``flops``: counted FLOPs of the
    adaptation and prediction; ``items``: stream length."""

    accuracy: float
    flops: int
    items: int


def stream_order(size: int, seed: int) -> torch.Tensor:
    """The stream's item order: a permutation of ``range(size)`` seeded by ``seed``."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))


def adapt_on_stream(make_adapter: Callable[[], TestTimeAdapter], split: DomainTensors, transform,
                    batch_size: int, seed: int, autocast: AbstractContextManager,
                    device: torch.device | None = None) -> StreamResult:
    """Accuracy of a fresh adapter's online predictions over ``split`` (module docstring)."""
    if len(split) == 0:
        return StreamResult(0.0, 0, 0)
    adapter = make_adapter()
    device = device or next(adapter.model.parameters()).device
    order = stream_order(len(split), seed)
    hits, flops = torch.zeros((), dtype=torch.int64, device=device), 0
    for start in range(0, len(split), batch_size):
        indices = order[start : start + batch_size]
        x = transform(split.x[indices].to(device, non_blocking=True))
        y = split.y[indices].to(device, non_blocking=True)

        def predict(x: torch.Tensor = x) -> torch.Tensor:
            with autocast:
                return adapter.adapt_and_predict(x)

        logits, batch_flops = count_flops(predict)
        flops += batch_flops
        hits += (logits.argmax(dim=1) == y).sum()
    return StreamResult(int(hits) / len(split), flops, len(split))
