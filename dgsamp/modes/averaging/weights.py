"""Weight arithmetic shared by the averaging modes (EMA, SMA, SWAD).

A model's *state* is its ``state_dict()``: parameters and buffers, as tensors that share
storage with the module, so in-place updates change the module itself. Floating-point
entries are averaged; integer buffers (BatchNorm's ``num_batches_tracked``, counters
such as DANN's) are copied from the online model, as timm's ModelEma does.

    average = averaged_copy(algorithm)            # same structure, no optimizers, no grads
    lerp_state_(average, algorithm, 1 - decay)    # EMA:  a <- a + w (m - a)   (every float entry)
    lerp_state_(average, algorithm, 1 / n)        # SMA:  running mean of n snapshots
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def averaged_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` for averaging: optimizers left out (set to None, they would
    double the memory), gradients off, in eval mode."""
    memo = {id(value): None for value in vars(model).values() if isinstance(value, torch.optim.Optimizer)}
    duplicate = copy.deepcopy(model, memo)
    return duplicate.requires_grad_(False).eval()


@torch.no_grad()
def lerp_state_(average: nn.Module, model: nn.Module, weight: float) -> None:
    """``a <- a + weight * (m - a)`` for every floating-point state entry (parameters and
    float buffers); other entries are copied. ``weight = 1`` copies exactly."""
    mine, theirs = [], []
    for ours, current in zip(average.state_dict().values(), model.state_dict().values(), strict=True):
        if ours.is_floating_point():
            mine.append(ours)
            theirs.append(current)
        else:
            ours.copy_(current)
    if weight == 1.0:
        torch._foreach_copy_(mine, theirs)
    elif mine:
        torch._foreach_lerp_(mine, theirs, weight)


def parameters_of(model: nn.Module) -> list[Tensor]:
    """The model's parameters as detached tensors sharing its storage (SWAD averages these)."""
    return [parameter.detach() for parameter in model.parameters()]


@torch.no_grad()
def running_mean_(mean: Sequence[Tensor], values: Sequence[Tensor], count: int) -> None:
    """Fold the ``count``-th sample into a running mean: ``mean <- mean + (values - mean) / count``
    (``count = 1`` copies). Values may live on another device than the mean."""
    if count == 1:
        torch._foreach_copy_(list(mean), list(values))
    else:
        moved = [value.to(target.device, non_blocking=True) for value, target in zip(values, mean, strict=True)]
        torch._foreach_lerp_(list(mean), moved, 1.0 / count)


@torch.no_grad()
def load_parameters_(model: nn.Module, values: Sequence[Tensor]) -> None:
    """Copy ``values`` (in ``model.parameters()`` order) into the model's parameters."""
    torch._foreach_copy_(parameters_of(model), list(values))
