"""JAN: Joint Adaptation Networks (Long et al., ICML 2017), as tllib trains it.

    L = CE(g(z_s), y_s) + λ · JMMD((z_s, p_s), (z_t, p_t)),   p = softmax(g(z)) [n, K]

JMMD (``mk_mmd.py``) multiplies, per pair of examples, two layers' kernels: on the features
z [n, D] the sum of five Gaussian kernels with σ² = α · mean pairwise squared distance,
α = 2^k for k = −3..1; on the class probabilities p one Gaussian kernel of fixed σ = 0.92
(tllib's jan.py script). The gradient flows through p into the classifier.
``linear_mmd`` takes the linear-time estimate; tllib's script defaults to the quadratic
one (its ``--linear`` flag unset), and so does this. λ = ``trade_off`` (tllib's 1.0).
tllib's adversarial variant (``--adversarial``, learned Θ layers) is not included.

Training modes: a GradSamp epoch samples every parameter (featurizer and classifier: JAN
has no other); the kernels have no state.

Reference: tllib tllib/alignment/jan.py and examples/domain_adaptation/image_classification/
jan.py @ c4aa59e.
"""

from __future__ import annotations

from torch import Tensor

from dgsamp.algorithms.mk_mmd import GaussianKernel, kernel_mmd
from dgsamp.algorithms.tllib_adaptation import TllibAdaptation, trade_off
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

JAN_KERNELS = (
    tuple(GaussianKernel(alpha=2.0**k) for k in range(-3, 2)),  # features
    (GaussianKernel(sigma=0.92),),  # class probabilities
)


@register_algorithm("JAN")
class JAN(TllibAdaptation):
    """Match the joint distribution of features and predictions under a joint MMD."""

    PAPER = (
        "Long, Zhu, Wang & Jordan: Deep Transfer Learning with Joint Adaptation Networks, "
        "ICML 2017, arXiv:1605.06636"
    )
    SOURCE = "tllib tllib/alignment/jan.py @ c4aa59e"

    HPARAMS = {
        "trade_off": trade_off(1.0, "λ of the JMMD term (tllib's --trade-off)"),
        "linear_mmd": HParam(False, lambda r: False, "linear-time MMD estimate (tllib's --linear)"),
    }

    def transfer_terms(
        self, z_s: Tensor, z_t: Tensor, logits_s: Tensor, logits_t: Tensor
    ) -> dict[str, tuple[float, Tensor]]:
        jmmd = kernel_mmd(
            [z_s, logits_s.softmax(dim=1)], [z_t, logits_t.softmax(dim=1)], JAN_KERNELS,
            linear=self.hparams["linear_mmd"],
        )
        return {"transfer_loss": (self.hparams["trade_off"], jmmd)}
