"""MMD alignment (Li et al., CVPR 2018, "MMD-AAE"), in DomainBed's multi-domain form.

A mixture of Gaussian kernels with DomainBed's bandwidths,

    k(u, v) = Σ_{γ ∈ {1e-3, 1e-2, 1e-1, 1, 10, 100, 1000}} exp(-γ ‖u − v‖²)

and the biased estimate of the squared maximum mean discrepancy between Z_a [n_a, D]
and Z_b [n_b, D],

    Δ(Z_a, Z_b) = mean k(Z_a, Z_a) + mean k(Z_b, Z_b) − 2 mean k(Z_a, Z_b)

The training loss is CE over the sources + ``mmd_gamma`` · mean over all domain pairs of
Δ (see ``alignment.py``; in domain adaptation the target batches are extra domains).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgsamp.algorithms.alignment import FeatureAlignment
from dgsamp.registry import register_algorithm

KERNEL_BANDWIDTHS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def squared_distances(u: Tensor, v: Tensor) -> Tensor:
    """``[n_u, n_v]``: ‖u_i − v_j‖² = ‖u_i‖² + ‖v_j‖² − 2 u_i·v_j, clamped at 0."""
    u_norms = u.pow(2).sum(1, keepdim=True)
    v_norms = v.pow(2).sum(1, keepdim=True)
    return (torch.addmm(v_norms.T, u, v.T, alpha=-2) + u_norms).clamp_min(0)


def gaussian_kernel(u: Tensor, v: Tensor) -> Tensor:
    """``[n_u, n_v]``: Σ_γ exp(−γ ‖u_i − v_j‖²) over ``KERNEL_BANDWIDTHS``."""
    distances = squared_distances(u, v)
    return sum(torch.exp(-gamma * distances) for gamma in KERNEL_BANDWIDTHS)


def mmd_discrepancy(za: Tensor, zb: Tensor) -> Tensor:
    """Biased MMD² between ``za: [n_a, D]`` and ``zb: [n_b, D]`` under ``gaussian_kernel``."""
    return (
        gaussian_kernel(za, za).mean()
        + gaussian_kernel(zb, zb).mean()
        - 2 * gaussian_kernel(za, zb).mean()
    )


@register_algorithm("MMD")
class MMD(FeatureAlignment):
    """Minimise the kernel two-sample distance between every pair of domains."""

    PAPER = (
        "Li, Pan, Wang & Kot: Domain Generalization with Adversarial Feature Learning, CVPR "
        "2018 (no arXiv version)"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def discrepancy(self, za: Tensor, zb: Tensor) -> Tensor:
        return mmd_discrepancy(za, zb)
