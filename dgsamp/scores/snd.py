"""Soft Neighborhood Density (SND) of the target predictions. Higher is better.

Saito, Kim, Teterwak, Sclaroff, Darrell and Saenko, ICCV 2021, "Tune it the Right Way:
Unsupervised Validation of Domain Adaptation via Soft Neighborhood Density". For target
outputs ``x[N, D]`` (by default the softmax of the logits, D = K classes):

    f_i  = x_i / ||x_i||                       (rows L2-normalised)
    s_ij = f_i . f_j / tau   for j != i        (cosine similarity; the diagonal is removed)
    P_ij = exp(s_ij) / sum_{l != i} exp(s_il)  (row-wise softmax over the N - 1 neighbours)
    SND  = (1/N) sum_i H(P_i) = -(1/N) sum_i sum_{j != i} P_ij log P_ij,   tau = 0.05

A high SND means every target example has many close neighbours (dense clusters) rather
than a few isolated ones. It assumes a good model groups the target into dense,
well-separated clusters; it can still reward a collapsed model whose clusters are too few.

The authors' code (VisionLearningGroup/SND ``nc_ps/eval.py`` @ cae5f48, ``neighbor_density``,
with ``entropy`` from ``base/utils/loss.py`` @ f1293a4) sets the diagonal to -1/tau, the
similarity of cosine -1 (weight exp(-1/tau) = 2e-9 relative to a neighbour at cosine 0), and
takes ``log(P + 1e-5)``; here the diagonal is left out exactly and ``0 log 0 = 0``. The two
differ by less than 1e-5 per neighbour.
"""

from __future__ import annotations

import torch

DEFAULT_TEMPERATURE = 0.05
"""The paper's and the authors' code's tau."""


def soft_neighborhood_density(
    outputs: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    apply_softmax: bool = True,
    block_size: int = 1024,
) -> float:
    """SND of ``outputs[N, D]``: logits (softmax applied, the paper's default) or, with
    ``apply_softmax=False``, rows used as given (e.g. features). N >= 2.

    Rows are processed ``block_size`` at a time, so memory is O(block_size * N), not N^2
    (VisDA-2017's 55,388 real images would need 24 GB at once in float64).
    """
    if outputs.ndim != 2 or outputs.shape[0] < 2:
        raise ValueError(f"SND needs outputs [N, D] with N >= 2; got {tuple(outputs.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    rows = outputs.double()
    if apply_softmax:
        rows = torch.softmax(rows, dim=1)
    unit = torch.nn.functional.normalize(rows, dim=1)
    n = unit.shape[0]
    total = torch.zeros((), dtype=torch.float64, device=unit.device)
    for start in range(0, n, block_size):
        block = unit[start : start + block_size]
        similarity = block @ unit.T / temperature  # [B, N]
        own = torch.arange(start, start + block.shape[0], device=unit.device)
        similarity[torch.arange(block.shape[0], device=unit.device), own] = float("-inf")
        neighbours = torch.softmax(similarity, dim=1)
        total += -torch.special.xlogy(neighbours, neighbours).sum()
    return (total / n).item()
