"""Tiny real algorithms for the adaptation tests: an ERM over a hand-set linear classifier,
and an ERM over a small CNN with BatchNorm (or GroupNorm)."""

from __future__ import annotations

import torch
from torch import nn

from dgsamp.algorithms.erm import ERM

HPARAMS = {"lr": 1e-2, "weight_decay": 0.0, "nonlinear_classifier": False}


class IdentityFeaturizer(nn.Module):
    """z = x for x [B, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.n_outputs = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class SmallCNN(nn.Module):
    """x [B, 1, 6, 6] -> conv 3x3 (4 channels) -> BatchNorm2d or GroupNorm -> ReLU -> mean pool -> z [B, 4]."""

    def __init__(self, norm: str = "batch") -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.norm = nn.BatchNorm2d(4) if norm == "batch" else nn.GroupNorm(2, 4)
        self.n_outputs = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3))


def linear_erm(weight: list[list[float]], bias: list[float] | None = None) -> ERM:
    """ERM over z = x whose classifier is exactly ``weight`` (and ``bias``, default 0)."""
    algorithm = ERM(IdentityFeaturizer(len(weight[0])), len(weight), 1, HPARAMS)
    with torch.no_grad():
        algorithm.classifier.weight.copy_(torch.tensor(weight))
        algorithm.classifier.bias.copy_(torch.tensor(bias or [0.0] * len(weight)))
    return algorithm.eval()


def cnn_erm(norm: str = "batch", seed: int = 0, classes: int = 3) -> ERM:
    torch.manual_seed(seed)
    return ERM(SmallCNN(norm), classes, 1, HPARAMS).eval()
