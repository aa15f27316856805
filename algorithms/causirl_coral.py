"""CausIRL_CORAL: CausIRL (``causirl.py``) with CORAL's discrepancy (``coral.py``).

    Δ(A, B) = 1/D ‖μ_A − μ_B‖²  +  1/D² ‖C_A − C_B‖²_F       A [n_A, D], B [n_B, D]

between the pooled heads A and tails B of the randomly cut domain batches.
"""

from __future__ import annotations

from torch import Tensor

from dgsamp.algorithms.causirl import CausIRL
from dgsamp.algorithms.coral import coral_discrepancy
from dgsamp.registry import register_algorithm


@register_algorithm("CausIRL_CORAL")
class CausIRL_CORAL(CausIRL):
    """Match means and covariances of the two random halves of the batch."""

    def discrepancy(self, za: Tensor, zb: Tensor) -> Tensor:
        return coral_discrepancy(za, zb)
