"""Built-in DA/DG algorithms, one file each; importing this package registers them."""

from dgsamp.algorithms.base import Algorithm

__all__ = ["Algorithm"]
