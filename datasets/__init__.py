"""Built-in multi-domain datasets; importing this package registers them."""

from dgsamp.datasets import images, mnist
from dgsamp.datasets.base import MultiDomainDataset

__all__ = ["MultiDomainDataset", "images", "mnist"]
