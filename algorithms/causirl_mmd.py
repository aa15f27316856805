"""CausIRL_MMD: CausIRL (``causirl.py``) with the Gaussian-kernel MMD² (``mmd.py``).

    Δ(A, B) = mean k(A, A) + mean k(B, B) − 2 mean k(A, B),
    k(u, v) = Σ_{γ ∈ {1e-3, …, 1e3}} exp(−γ ‖u − v‖²)             A [n_A, D], B [n_B, D]

between the pooled heads A and tails B of the randomly cut domain batches.
"""

from __future__ import annotations

from torch import Tensor

from dgsamp.algorithms.causirl import CausIRL
from dgsamp.algorithms.mmd import mmd_discrepancy
from dgsamp.registry import register_algorithm


@register_algorithm("CausIRL_MMD")
class CausIRL_MMD(CausIRL):
    """Minimise the kernel two-sample distance between the two random halves of the batch."""

    def discrepancy(self, za: Tensor, zb: Tensor) -> Tensor:
        return mmd_discrepancy(za, zb)
