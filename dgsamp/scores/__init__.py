"""Scores of a trained model for domain adaptation, as pure functions of tensors.

Accuracy needs labels (on the target it is the oracle); the others select a model without
target labels. ``SCORES`` lists the label-free ones so selection rules and docs can be
driven from one table. The inputs a score needs, by name:

- ``target_logits``: the model's logits on the target examples, ``[N_t, K]``;
- ``source_val``: on the source validation split, the features ``[N_v, D]`` and the
  per-example losses ``[N_v]``;
- ``features``: the featurizer's outputs on the source training split ``[N_s, D]`` and on
  the target examples ``[N_t, D]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from dgsamp.scores.accuracy import mean_per_class_accuracy, overall_accuracy
from dgsamp.scores.dev import deep_embedded_validation, dev_risk, domain_density_ratio
from dgsamp.scores.entropy import information_maximization, mean_entropy
from dgsamp.scores.snd import soft_neighborhood_density

__all__ = [
    "SCORES",
    "ScoreSpec",
    "deep_embedded_validation",
    "dev_risk",
    "domain_density_ratio",
    "information_maximization",
    "mean_entropy",
    "mean_per_class_accuracy",
    "overall_accuracy",
    "soft_neighborhood_density",
]


@dataclass(frozen=True)
class ScoreSpec:
    """A label-free selection score: the function, what it reads, which way is better."""

    function: Callable[..., float]
    inputs: tuple[str, ...]
    direction: Literal["max", "min"]
    assumes: str

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than ``b``."""
        return a > b if self.direction == "max" else a < b


SCORES: dict[str, ScoreSpec] = {
    "entropy": ScoreSpec(
        mean_entropy, ("target_logits",), "min",
        "confident target predictions are right (rewards a collapse onto one class)",
    ),
    "im": ScoreSpec(
        information_maximization, ("target_logits",), "max",
        "confident target predictions are right and the target classes are roughly balanced",
    ),
    "snd": ScoreSpec(
        soft_neighborhood_density, ("target_logits",), "max",
        "a good model groups the target predictions into dense, well-separated clusters",
    ),
    "dev": ScoreSpec(
        deep_embedded_validation, ("features", "source_val"), "min",
        "covariate shift in feature space, with the target's features covered by the source's",
    ),
}
