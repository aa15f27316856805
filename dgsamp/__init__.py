"""dgsamp: domain generalization and adaptation with energy as a first-class metric."""

__version__ = "0.1.0"
