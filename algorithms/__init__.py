"""Built-in DA/DG algorithms, one file each; importing this package registers them."""

from dgsamp.algorithms import cdann, coral, dann, erm, groupdro, irm, mixup, mmd, vrex
from dgsamp.algorithms.base import Algorithm

__all__ = [
    "Algorithm",
    "cdann",
    "coral",
    "dann",
    "erm",
    "groupdro",
    "irm",
    "mixup",
    "mmd",
    "vrex",
]
