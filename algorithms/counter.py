"""A step counter that lives in ``state_dict`` yet never forces a host synchronisation.

Algorithms branch on how many updates they have made (penalty annealing, alternating
discriminator/generator steps, warm-start schedules). Reading a CUDA tensor on the host
would stall the GPU every step, so the count is a Python ``int`` for branching, mirrored
into a buffer ``count`` (shape ``[]``, int64) with an asynchronous ``fill_`` so that
checkpoints carry it; ``load_state_dict`` copies the buffer back into the ``int``.
"""

from __future__ import annotations

import torch
from torch import nn


class StepCounter(nn.Module):
    """``counter.value`` (int) = number of ``increment()`` calls, saved as buffer ``count``."""

    def __init__(self) -> None:
        super().__init__()
        self.value = 0
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def increment(self) -> int:
        """Advance by one; returns the new value (no device read)."""
        self.value += 1
        self.count.fill_(self.value)
        return self.value

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.value = int(self.count)  # one read at load time, never in the step loop

    def extra_repr(self) -> str:
        return f"value={self.value}"
