"""Multi-kernel MMD (DAN) and its joint form over several layers (JAN), as tllib estimates them.

Gaussian kernels take their bandwidth from the batch. For one layer's activations of all
N = n_s + n_t examples (source first), z [N, F]:

    k_α(a, b) = exp(−‖a − b‖² / (2σ²)),   σ² = α · 1/N² Σ_{i,j} ‖z_i − z_j‖²   (no gradient)

(tllib's ``GaussianKernel(alpha=α)``; the mean over all pairs, diagonal included, equals
2 · 1/N Σ_i ‖z_i − z̄‖², computed so in O(N·F)), or a fixed σ (``track_running_stats=False``).
A layer's kernels add up (k = Σ_u k_u, every β_u = 1); layers l multiply (JMMD):

    K(i, j) = Π_l Σ_u k_u^l(z_i^l, z_j^l)                 (one layer: MK-MMD)

Two estimators of MMD²(P_s, P_t) from K, with s_i the i-th source and t_j the j-th target:

    linear (tllib's "linear version", Gretton et al. 2012's linear-time statistic):
        1/m Σ_{i<m} [K(s_i, s_{i+1}) + K(t_i, t_{i+1}) − K(s_i, t_{i+1}) − K(s_{i+1}, t_i)]
        m = max(n_s, n_t), source indices mod n_s, target indices mod n_t
    quadratic (tllib's default for JAN):
        1/(n_s(n_s−1)) Σ_{i≠j} K(s_i, s_j) + 1/(n_t(n_t−1)) Σ_{i≠j} K(t_i, t_j)
        − 2/(n_s n_t) Σ_{i,j} K(s_i, t_j)

each plus tllib's constant 2/(n_s − 1), which has no gradient ("to make up for the
diagonal"; kept so reported values read as tllib's). tllib requires n_s = n_t; these forms
accept several source domains against one target (each linear term still has expectation
MMD²) and reduce to tllib's index matrices when n_s = n_t ≥ 3.

Reference: tllib tllib/alignment/dan.py, tllib/alignment/jan.py, tllib/modules/kernels.py
@ c4aa59e; Long et al., ICML 2015 (arXiv:1502.02791) and ICML 2017 (arXiv:1605.06636).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dgsamp.errors import UserError


@dataclass(frozen=True)
class GaussianKernel:
    """k(a, b) = exp(−‖a − b‖² / (2σ²)); σ² = α · mean pairwise ‖z_i − z_j‖², or ``sigma``² if given."""

    alpha: float = 1.0
    sigma: float | None = None

    def sigma_square(self, z: Tensor) -> Tensor | float:
        """σ² for the activations z [N, F] of one layer (both domains)."""
        if self.sigma is not None:
            return self.sigma**2
        z = z.detach()
        return self.alpha * 2.0 * (z - z.mean(dim=0)).pow(2).sum(dim=1).mean()


def joint_kernel(
    squared_distances: Sequence[Tensor], bandwidths: Sequence[Sequence[Tensor | float]]
) -> Tensor:
    """Π_l Σ_u exp(−d_l / (2σ²_lu)) for per-layer squared distances d_l of any one shape."""
    product = None
    for distance, layer_bandwidths in zip(squared_distances, bandwidths, strict=True):
        layer = sum(torch.exp(-distance / (2.0 * sigma_square)) for sigma_square in layer_bandwidths)
        product = layer if product is None else product * layer
    assert product is not None, "at least one layer"
    return product


def squared_distance_matrix(z: Tensor) -> Tensor:
    """‖z_i − z_j‖² [N, N] for z [N, F] (Gram form, clamped at 0 against rounding)."""
    norms = z.pow(2).sum(dim=1)
    return (norms[:, None] + norms[None, :] - 2.0 * z @ z.T).clamp_min(0.0)


def kernel_mmd(
    source_layers: Sequence[Tensor],
    target_layers: Sequence[Tensor],
    kernels: Sequence[Sequence[GaussianKernel]],
    linear: bool,
) -> Tensor:
    """JMMD of per-layer activations [n_s, *] and [n_t, *] with ``kernels[l]`` for layer l."""
    n_s, n_t = int(source_layers[0].shape[0]), int(target_layers[0].shape[0])
    if min(n_s, n_t) < 2:
        raise UserError(f"MMD needs at least 2 source and 2 target examples per step, got {n_s} and {n_t}")
    layers = [torch.cat([s, t]).flatten(1) for s, t in zip(source_layers, target_layers, strict=True)]
    bandwidths = [[k.sigma_square(z) for k in ks] for z, ks in zip(layers, kernels, strict=True)]
    if linear:
        mmd = _linear_estimate(layers, bandwidths, n_s, n_t)
    else:
        mmd = _quadratic_estimate(layers, bandwidths, n_s, n_t)
    return mmd + 2.0 / (n_s - 1)


def _linear_estimate(layers: list[Tensor], bandwidths: list, n_s: int, n_t: int) -> Tensor:
    m = max(n_s, n_t)
    i = torch.arange(m, device=layers[0].device)
    s, s_next = i % n_s, (i + 1) % n_s
    t, t_next = n_s + i % n_t, n_s + (i + 1) % n_t
    first = torch.cat([s, t, s, s_next])  # the four pair sets, one kernel call
    second = torch.cat([s_next, t_next, t_next, t])
    distances = [(z[first] - z[second]).pow(2).sum(dim=1) for z in layers]
    ss, tt, st, ts = joint_kernel(distances, bandwidths).view(4, m)
    return (ss + tt - st - ts).mean()


def _quadratic_estimate(layers: list[Tensor], bandwidths: list, n_s: int, n_t: int) -> Tensor:
    k = joint_kernel([squared_distance_matrix(z) for z in layers], bandwidths)
    k_ss, k_tt, k_st = k[:n_s, :n_s], k[n_s:, n_s:], k[:n_s, n_s:]
    within_s = (k_ss.sum() - k_ss.diagonal().sum()) / (n_s * (n_s - 1))
    within_t = (k_tt.sum() - k_tt.diagonal().sum()) / (n_t * (n_t - 1))
    return within_s + within_t - 2.0 * k_st.sum() / (n_s * n_t)
