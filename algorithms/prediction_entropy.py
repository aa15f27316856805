"""Entropy of predicted class probabilities, as tllib computes it.

    H(p_i) = −Σ_c p_ic log(p_ic + ε),   ε = 1e-5,   p [N, K] → H [N]

The ε keeps log finite at p = 0 (tllib tllib/modules/entropy.py @ c4aa59e). CDAN+E and MCC
weight examples by 1 + exp(−H): confident predictions count more.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPSILON = 1e-5


def prediction_entropy(probabilities: Tensor) -> Tensor:
    """H [N] of probabilities [N, K] (rows summing to one)."""
    return -(probabilities * torch.log(probabilities + EPSILON)).sum(dim=1)


def certainty_weights(probabilities: Tensor) -> Tensor:
    """w_i = N (1 + e^{−H(p_i)}) / Σ_j (1 + e^{−H(p_j)}) [N], without gradient (mean 1)."""
    raw = 1.0 + torch.exp(-prediction_entropy(probabilities.detach()))
    return raw * (raw.shape[0] / raw.sum())
