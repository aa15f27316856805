"""Recompute BatchNorm statistics of an averaged model (SWA/SWAD's ``update_bn``).

Averaging weights does not average the activations' statistics: the running mean and
variance that suit the averaged weights are re-estimated from training inputs. Every
BatchNorm layer that trains (frozen ones, ``--freeze_bn``, stay in eval mode and keep
theirs) is reset and accumulates a cumulative average (``momentum=None``) over ``steps``
forward passes in train mode:

    mu  = mean_b  mean(x_b)        var = mean_b var(x_b)       (b = 1..steps)
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn


def training_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers that update their statistics when ``model`` is in train mode."""
    was_training = model.training
    model.train()
    layers = [m for m in model.modules()
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
    model.train(was_training)
    return layers


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, inputs: Iterator[Tensor], steps: int) -> int:
    """Re-estimate the statistics of ``model``'s training BatchNorm layers from ``steps``
    batches of ``inputs`` (x[B, C, H, W], already on the device and normalised); ``model``
    is called through ``predict``. Returns the number of layers updated (0: nothing to do,
    and no input is drawn)."""
    layers = training_batchnorms(model)
    if not layers or steps <= 0:
        return 0
    momenta = {layer: layer.momentum for layer in layers}
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average over the passes
    was_training = model.training
    model.train()
    try:
        for _ in range(steps):
            model.predict(next(inputs))
    finally:
        for layer, momentum in momenta.items():
            layer.momentum = momentum
        model.train(was_training)
    return len(layers)
