"""CDAN and CDAN+E: conditional domain-adversarial networks (Long et al., NeurIPS 2018), as tllib.

A discriminator D (``tllib_discriminator.py``) sees the features f [N, D] conditioned on
the class probabilities g = softmax(logits) [N, K] (no gradient through g) through a map T
(``multilinear_map.py``) and a warm-start gradient reversal R (``warm_start_grl.py``):

    L_adv = 1/N Σ_i w_i · BCE(D(R(T(f_i, g_i))), d_i),   d_i = 1 on sources, 0 on targets
    L     = CE(g(z_s), y_s) + λ · L_adv

one BCE over all N = n_s + n_t examples. CDAN: w_i = 1. CDAN+E (tllib's ``--entropy``,
registered as "CDAN_E" because a "+" is awkward in run names, sweep files and shells):
w_i = N (1 + e^{−H(g_i)}) / Σ_j (1 + e^{−H(g_j)}), so confident examples weigh more.

``multilinear_map``: "full" T⊗ = g ⊗ f [N, K·D], "randomized" T⊙ [N, ``randomized_dim``],
or "auto" (default): T⊙ when D·K > 4096, the CDAN paper's rule; tllib's script uses T⊗
unless ``--randomized`` is given. λ = ``trade_off`` (tllib's 1.0).

Training modes: a GradSamp epoch samples every parameter, the discriminator's included;
the GRL's step counter and the randomized map's R_f, R_g are buffers and do not move.

Reference: tllib tllib/alignment/cdan.py and examples/domain_adaptation/image_classification/
cdan.py @ c4aa59e.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgsamp.algorithms.multilinear_map import conditioning_map
from dgsamp.algorithms.prediction_entropy import certainty_weights
from dgsamp.algorithms.tllib_adaptation import TllibAdaptation, trade_off
from dgsamp.algorithms.tllib_discriminator import DomainDiscriminator, binary_cross_entropy
from dgsamp.algorithms.warm_start_grl import TllibWarmStartGRL
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


class ConditionalDomainAdversarialLoss(nn.Module):
    """L_adv(f_s [n_s, D], f_t [n_t, D], logits_s [n_s, K], logits_t [n_t, K]) → scalar."""

    def __init__(self, conditioning: nn.Module, entropy_conditioning: bool) -> None:
        super().__init__()
        self.map = conditioning
        self.discriminator = DomainDiscriminator(conditioning.output_dim)
        self.grl = TllibWarmStartGRL()
        self.entropy_conditioning = entropy_conditioning

    def forward(self, f_s: Tensor, f_t: Tensor, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        f = torch.cat([f_s, f_t])
        g = torch.cat([logits_s, logits_t]).softmax(dim=1).detach()
        d = self.discriminator(self.grl(self.map(f, g)))
        domain = torch.cat([d.new_ones(f_s.shape[0]), d.new_zeros(f_t.shape[0])])
        weight = certainty_weights(g) if self.entropy_conditioning else None
        return binary_cross_entropy(d, domain, weight)


CDAN_HPARAMS = {
    "trade_off": trade_off(1.0, "λ of the adversarial term (tllib's --trade-off)"),
    "multilinear_map": HParam(
        "auto", lambda r: "auto", "full, randomized, or auto (randomized when D·K > 4096)",
        choices=("auto", "full", "randomized"),
    ),
    "randomized_dim": HParam(
        1024, lambda r: 1024, "output size of the randomized map (tllib's --randomized-dim)", minimum=1
    ),
}


@register_algorithm("CDAN")
class CDAN(TllibAdaptation):
    """Adversarial alignment of features conditioned on the classifier's predictions."""

    PAPER = (
        "Long, Cao, Wang & Jordan: Conditional Adversarial Domain Adaptation, NeurIPS 2018, "
        "arXiv:1705.10667"
    )
    SOURCE = "tllib tllib/alignment/cdan.py @ c4aa59e"

    HPARAMS = CDAN_HPARAMS
    ENTROPY_CONDITIONING = False

    def build_heads(self) -> None:
        hp = self.hparams
        conditioning = conditioning_map(
            hp["multilinear_map"], self.featurizer.n_outputs, self.num_classes, hp["randomized_dim"]
        )
        self.domain_adversarial = ConditionalDomainAdversarialLoss(conditioning, self.ENTROPY_CONDITIONING)

    def transfer_terms(
        self, z_s: Tensor, z_t: Tensor, logits_s: Tensor, logits_t: Tensor
    ) -> dict[str, tuple[float, Tensor]]:
        adversarial = self.domain_adversarial(z_s, z_t, logits_s, logits_t)
        return {"transfer_loss": (self.hparams["trade_off"], adversarial)}


@register_algorithm("CDAN_E")
class CDAN_E(CDAN):
    """CDAN+E: CDAN with entropy conditioning (tllib's cdan.py ``--entropy``)."""

    ENTROPY_CONDITIONING = True
