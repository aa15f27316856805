"""Deep CORAL (Sun & Saenko, ECCV-W 2016), in DomainBed's multi-domain form.

For two feature sets Z_a [n_a, D], Z_b [n_b, D] with means μ and covariances

    C = (Z - μ)ᵀ (Z - μ) / (n - 1)                                   [D, D]
    Δ(Z_a, Z_b) = 1/D ‖μ_a - μ_b‖²  +  1/D² ‖C_a - C_b‖²_F

(Sun & Saenko align covariances only, scaled 1/(4D²); DomainBed adds the mean term and
averages over entries.) The training loss is

    L = CE over the sources + γ · mean over all domain pairs (a, b) of Δ(Z_a, Z_b)

see ``alignment.py``: in domain adaptation the target batches are extra domains in the
pairs. Hparam ``mmd_gamma`` = γ (DomainBed's name).
"""

from __future__ import annotations

from torch import Tensor

from dgsamp.algorithms.alignment import FeatureAlignment
from dgsamp.registry import register_algorithm


def coral_discrepancy(za: Tensor, zb: Tensor) -> Tensor:
    """1/D ‖μ_a − μ_b‖² + 1/D² ‖C_a − C_b‖²_F for ``za: [n_a, D]``, ``zb: [n_b, D]``."""
    mean_a, mean_b = za.mean(0, keepdim=True), zb.mean(0, keepdim=True)
    centred_a, centred_b = za - mean_a, zb - mean_b
    cov_a = centred_a.T @ centred_a / (za.shape[0] - 1)
    cov_b = centred_b.T @ centred_b / (zb.shape[0] - 1)
    return (mean_a - mean_b).pow(2).mean() + (cov_a - cov_b).pow(2).mean()


@register_algorithm("CORAL")
class CORAL(FeatureAlignment):
    """Match first and second moments of the features across every pair of domains."""

    PAPER = (
        "Sun & Saenko: Deep CORAL: Correlation Alignment for Deep Domain Adaptation, ECCV "
        "2016 Workshops, arXiv:1607.01719"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def discrepancy(self, za: Tensor, zb: Tensor) -> Tensor:
        return coral_discrepancy(za, zb)
