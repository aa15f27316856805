"""Training modes: what the trainer does around the update (GradSamp, ssProp, EMA, SMA,
SWAD, plugins).

See ``dgsamp.modes.base`` for the protocol; ``dgsamp.registry.register_mode`` to add one.
"""

from dgsamp.modes.base import BACKPROP, EpochPlan, Option, RunShape, TrainingMode

__all__ = ["BACKPROP", "EpochPlan", "Option", "RunShape", "TrainingMode"]
