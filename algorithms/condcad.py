"""CondCAD: the class-conditional CAD bottleneck (Ruan, Dubois & Maddison, ICLR 2022), as in DomainBed.

CAD (``cad.py``) with the contrastive bottleneck on I(D; Z | Y): each example's
neighbour distribution runs over the other examples of its own class only. With
s_ij = z_i·z_j / τ on the pooled features z [N, D] and P_i = {j ≠ i : y_j = y_i},

    p^y_ij = exp(s_ij) / Σ_{k ∈ P_i} exp(s_ik)                          j ∈ P_i
    flipped (default): ℓ_i = −(τ/τ₀) log Σ_{j ∈ P_i, d_j ≠ d_i} p^y_ij   rows with such a j
    not flipped:       ℓ_i = +(τ/τ₀) log Σ_{j ∈ P_i, d_j = d_i} p^y_ij   rows with such a j
    L = 1/N Σ_i CE(g(z_i), y_i) + λ · mean_i ℓ_i,   τ₀ = 0.07

so within each class the features of different domains become indistinguishable.
Hparams: CAD's (``lmbda``, ``temperature``, ``is_normalized``, ``is_project``, ``is_flipped``).
"""

from __future__ import annotations

from dgsamp.algorithms.cad import CAD
from dgsamp.registry import register_algorithm


@register_algorithm("CondCAD")
class CondCAD(CAD):
    """CAD whose bottleneck contrasts examples of the same class only."""

    CONDITIONAL = True
