"""Built-in multi-domain datasets; importing this package registers them.

Every module of this package is imported, in sorted order, so a new file in
``datasets/`` registers its ``@register_dataset`` classes without being listed here.
"""

from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.registry import import_submodules

__all__ = ["MultiDomainDataset"]

import_submodules(__name__, __path__)
