"""DANN as tllib trains it (Ganin et al., JMLR 2016): one joint step through gradient reversal.

    L_adv = ½ [ mean_{i∈s} BCE(D(R(z_i)), 1) + mean_{j∈t} BCE(D(R(z_j)), 0) ]
    L     = CE(g(z_s), y_s) + λ · L_adv

D is tllib's discriminator (Linear(D, 1024) → BN → ReLU → Linear(1024, 1024) → BN → ReLU →
Linear(1024, 1) → Sigmoid) on the source and target features concatenated, R the
warm-start gradient reversal (λ_R from 0 towards 1 over ~1,000s of steps), both in
``tllib_discriminator.py``; one optimiser steps featurizer, classifier and D together.
λ = ``trade_off`` (tllib's ``--trade-off``, 1.0). DomainBed's DANN (``dann.py``:
alternating steps, an MLP over domain labels, Adam betas (0.5, 0.9)) is a different recipe:
``--protocol tllib`` runs this class (registered as DANN_tllib) for the name DANN.

Training modes: a GradSamp epoch samples every parameter, the discriminator's included;
the GRL's step counter is a buffer and does not move.

Reference: tllib tllib/alignment/dann.py and examples/domain_adaptation/image_classification/
dann.py @ c4aa59e.
"""

from __future__ import annotations

from torch import Tensor

from dgsamp.algorithms.tllib_adaptation import TllibAdaptation, trade_off
from dgsamp.algorithms.tllib_discriminator import DomainAdversarialLoss, DomainDiscriminator
from dgsamp.registry import register_algorithm

TLLIB_DANN_HPARAMS = {"trade_off": trade_off(1.0, "λ of the adversarial term (tllib's --trade-off)")}


@register_algorithm("DANN_tllib")
class TllibDANN(TllibAdaptation):
    """Domain-adversarial training with tllib's discriminator, loss and warm-start GRL."""

    PAPER = (
        "Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand & Lempitsky: "
        "Domain-Adversarial Training of Neural Networks, JMLR 2016, arXiv:1505.07818"
    )
    SOURCE = "tllib tllib/alignment/dann.py @ c4aa59e"

    HPARAMS = TLLIB_DANN_HPARAMS

    def build_heads(self) -> None:
        self.domain_adversarial = DomainAdversarialLoss(DomainDiscriminator(self.featurizer.n_outputs))

    def transfer_terms(
        self, z_s: Tensor, z_t: Tensor, logits_s: Tensor, logits_t: Tensor
    ) -> dict[str, tuple[float, Tensor]]:
        return {"transfer_loss": (self.hparams["trade_off"], self.domain_adversarial(z_s, z_t))}
