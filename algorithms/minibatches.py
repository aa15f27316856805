"""Helpers shared by the algorithms for DomainBed's per-domain minibatches.

``minibatches`` is a list of ``(x_d, y_d)``, one per training domain d, with
``x_d: [n_d, C, H, W]`` and ``y_d: [n_d]``. Algorithms concatenate them so the featurizer
runs once per step, then split the outputs back per domain with ``sizes = [n_d]``
(Python ints: splitting never reads the device).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def concat_minibatches(minibatches: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, list[int]]:
    """``x: [sum n_d, C, H, W]``, ``y: [sum n_d]``, ``sizes: [n_d]``."""
    x = torch.cat([xd for xd, _ in minibatches])
    y = torch.cat([yd for _, yd in minibatches])
    return x, y, [int(xd.shape[0]) for xd, _ in minibatches]


def forward_each(module, inputs: list[Tensor], per_domain: bool) -> list[Tensor]:
    """``[module(x_d) for each d]``: one call per input (``per_domain``; BatchNorm sees each
    domain alone, as in DomainBed's CORAL, MMD, GroupDRO and Mixup), or one call on their
    concatenation ``[sum n_d, ...]`` whose output is split back into ``[n_d, ...]`` parts."""
    if per_domain:
        return [module(x) for x in inputs]
    return list(module(torch.cat(inputs)).split([int(x.shape[0]) for x in inputs]))


def domain_labels(sizes: list[int], device: torch.device, first: int = 0) -> Tensor:
    """``[sum n_d]`` long tensor holding ``first + d`` for every example of domain d."""
    return torch.cat(
        [torch.full((n,), first + d, dtype=torch.long, device=device) for d, n in enumerate(sizes)]
    )


def per_domain_cross_entropy(logits: Tensor, y: Tensor, sizes: list[int]) -> Tensor:
    """``[num_domains]``: R_d = mean over domain d's examples of CE(logits_i, y_i)."""
    losses = F.cross_entropy(logits, y, reduction="none").split(sizes)
    return torch.stack([loss.mean() for loss in losses])
