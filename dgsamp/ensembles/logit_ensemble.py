"""EoA's prediction: the mean of the members' logits.

    ensemble = LogitEnsemble([algorithm_1, ..., algorithm_K])
    ensemble.predict(x)        # x[B, ...] -> (1/K) sum_k algorithm_k.predict(x), logits [B, C] (float32)

The argmax equals EoA's (its code sums the logits); the mean keeps the logits on the
members' scale, so the cross-entropy of the ensemble is that of averaged logits.
Members may differ in architecture (hparams) but not in classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class LogitEnsemble(nn.Module):
    """K models evaluated as one: ``predict(x) = mean_k model_k.predict(x)``."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        total = None
        for member in self.members:
            logits = member.predict(x).float()
            total = logits if total is None else total + logits
        return total / len(self.members)

    def forward(self, x: Tensor) -> Tensor:
        return self.predict(x)
