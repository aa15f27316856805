"""CDAN's conditioning maps T(f, g): features f [N, D] and class probabilities g [N, K] → [N, ·].

    multilinear:  T⊗(f, g) = g ⊗ f,  flattened to [N, K·D]    (entry k·D + d = g_k f_d)
    randomized:   T⊙(f, g) = (f R_f) ⊙ (g R_g) / √d            [N, d]

R_f [D, d] and R_g [K, d] are drawn once from N(0, 1) and never trained; they are buffers,
so checkpoints keep them (tllib holds them as plain tensors, redrawn on every start).
The CDAN paper uses T⊙ when D·K exceeds 4096 (Long et al., NeurIPS 2018, §3.1); tllib's
script uses it only when asked (``--randomized``, d = ``--randomized-dim`` = 1024).

Reference: tllib tllib/alignment/cdan.py @ c4aa59e (``MultiLinearMap``,
``RandomizedMultiLinearMap``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

MULTILINEAR_LIMIT = 4096  # the CDAN paper's largest D·K for the full map


class MultilinearMap(nn.Module):
    """g ⊗ f [N, K·D]."""

    def __init__(self, features_dim: int, num_classes: int) -> None:
        super().__init__()
        self.output_dim = features_dim * num_classes

    def forward(self, f: Tensor, g: Tensor) -> Tensor:
        return (g.unsqueeze(2) * f.unsqueeze(1)).flatten(1)


class RandomizedMultilinearMap(nn.Module):
    """(f R_f) ⊙ (g R_g) / √d [N, d] with fixed Gaussian R_f, R_g (buffers)."""

    def __init__(self, features_dim: int, num_classes: int, output_dim: int = 1024) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.register_buffer("random_f", torch.randn(features_dim, output_dim))
        self.register_buffer("random_g", torch.randn(num_classes, output_dim))

    def forward(self, f: Tensor, g: Tensor) -> Tensor:
        return (f @ self.random_f) * (g @ self.random_g) / math.sqrt(self.output_dim)


def conditioning_map(kind: str, features_dim: int, num_classes: int, randomized_dim: int) -> nn.Module:
    """``kind`` "full", "randomized", or "auto" (randomized when D·K > 4096)."""
    if kind == "auto":
        kind = "randomized" if features_dim * num_classes > MULTILINEAR_LIMIT else "full"
    if kind == "randomized":
        return RandomizedMultilinearMap(features_dim, num_classes, randomized_dim)
    return MultilinearMap(features_dim, num_classes)
