"""Restart an optimizer with a new learning rate, as DomainBed does when a penalty switches on.

DomainBed's EQRM and RDM build a new ``Adam(network.parameters(), lr=new_lr, weight_decay)``
when their burn-in ends. Clearing the moments of the same optimizer and setting every
group's learning rate is the same update and keeps an LR schedule bound to the optimizer:
a group that carries ``initial_lr`` (the trainer's cosine schedule) gets ``new_lr`` as its
new initial value and keeps the schedule's current factor.
"""

from __future__ import annotations

import torch


def restart_optimizer(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Drop every moment estimate and step count of ``optimizer``; learning rate → ``lr``."""
    optimizer.state.clear()
    for group in optimizer.param_groups:
        if "initial_lr" in group:
            factor = group["lr"] / group["initial_lr"]
            group["initial_lr"] = lr
            group["lr"] = lr * factor
        else:
            group["lr"] = lr
