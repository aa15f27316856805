"""BSP: batch spectral penalization (Chen et al., ICML 2019) on tllib's DANN and on CDAN.

    BSP(z_s, z_t) = σ_1(z_s)² + σ_1(z_t)²
    L = L_base + λ_bsp · BSP(z_s, z_t)

σ_1(Z) is the largest singular value of the feature batch Z [n, D] (tllib sums the top
k = 1; float32 SVD, differentiable). Penalising it stops a few eigen-features from
dominating the transferable ones. L_base is tllib's DANN (``dann_tllib.py``) for "DANN_BSP",
as tllib's bsp.py script, or CDAN (``cdan.py``) for "CDAN_BSP", the paper's other
pairing. Two registered names rather than one with a base choice: each keeps its base's
hparams and heads exactly, and a leaderboard row names the whole recipe.
λ_bsp = ``trade_off_bsp`` (tllib's ``--trade-off-bsp``, 2e-4).

Not included: tllib's script first pre-trains on the source alone (3 epochs of 1,000
iterations at lr 0.001, a separate optimiser) and starts BSP from those weights.

Training modes: as the base method; the penalty has no state.

Reference: tllib tllib/alignment/bsp.py and examples/domain_adaptation/image_classification/
bsp.py @ c4aa59e.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgsamp.algorithms.cdan import CDAN
from dgsamp.algorithms.dann_tllib import TllibDANN
from dgsamp.algorithms.tllib_adaptation import trade_off
from dgsamp.registry import register_algorithm

BSP_HPARAMS = {
    "trade_off_bsp": trade_off(2e-4, "λ_bsp of the spectral penalty (tllib's --trade-off-bsp)", -5, -3),
}


def batch_spectral_penalty(z_s: Tensor, z_t: Tensor) -> Tensor:
    """σ_1(z_s)² + σ_1(z_t)² for feature batches [n_s, D] and [n_t, D]."""
    top_s = torch.linalg.svdvals(z_s.float())[0]
    top_t = torch.linalg.svdvals(z_t.float())[0]
    return top_s.pow(2) + top_t.pow(2)


class BatchSpectralPenalization:
    """Mixin: adds λ_bsp · BSP to the transfer terms of the class it precedes."""

    hparams: dict

    def transfer_terms(
        self, z_s: Tensor, z_t: Tensor, logits_s: Tensor, logits_t: Tensor
    ) -> dict[str, tuple[float, Tensor]]:
        terms = super().transfer_terms(z_s, z_t, logits_s, logits_t)  # type: ignore[misc]
        terms["bsp_loss"] = (self.hparams["trade_off_bsp"], batch_spectral_penalty(z_s, z_t))
        return terms


PAPER = (
    "Chen, Wang, Long & Wang: Transferability vs. Discriminability: Batch Spectral "
    "Penalization for Adversarial Domain Adaptation, ICML 2019"
)


@register_algorithm("DANN_BSP")
class DANN_BSP(BatchSpectralPenalization, TllibDANN):
    """tllib's DANN plus the batch spectral penalty (tllib's bsp.py)."""

    PAPER = PAPER
    SOURCE = "tllib tllib/alignment/bsp.py @ c4aa59e"
    HPARAMS = {**TllibDANN.HPARAMS, **BSP_HPARAMS}


@register_algorithm("CDAN_BSP")
class CDAN_BSP(BatchSpectralPenalization, CDAN):
    """CDAN plus the batch spectral penalty (the paper's CDAN+BSP)."""

    PAPER = PAPER
    SOURCE = "tllib tllib/alignment/bsp.py and tllib/alignment/cdan.py @ c4aa59e"
    HPARAMS = {**CDAN.HPARAMS, **BSP_HPARAMS}
