"""Built-in DA/DG algorithms, one file each; importing this package registers them.

Every module of this package is imported, in sorted order, so a new file in
``algorithms/`` registers its ``@register_algorithm`` classes without being listed here.
Helper modules (``base``, ``grl``, ``minibatches``, ...) are imported too; they register
nothing.
"""

from dgsamp.algorithms.base import Algorithm
from dgsamp.registry import import_submodules

__all__ = ["Algorithm"]

import_submodules(__name__, __path__)
