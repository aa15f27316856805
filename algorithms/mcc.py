"""MCC: minimum class confusion (Jin et al., ECCV 2020), as tllib trains it.

On the target logits [n, K], with temperature T:

    p   = softmax(logits / T)                                   [n, K]
    w_i = n (1 + e^{−H(p_i)}) / Σ_j (1 + e^{−H(p_j)})           [n]   (no gradient)
    C   = pᵀ diag(w) p                                          [K, K] class confusion
    C̃_kl = C_kl / Σ_m C_ml                                             (category normalisation)
    MCC = (Σ_{k,l} C̃_kl − Σ_k C̃_kk) / K                        mean off-diagonal confusion
    L   = CE(g(z_s), y_s) + λ · MCC

H is the prediction entropy (``prediction_entropy.py``). The normalisation divides each
column l by its sum, as tllib's ``C / C.sum(dim=1)`` does by broadcasting (C is symmetric,
so its row sums are its column sums). T = ``temperature`` (tllib's 2.5), λ = ``trade_off`` (tllib's 1.0).

Training modes: a GradSamp epoch samples every parameter (featurizer and classifier: MCC
has no other); the loss has no state.

Reference: tllib tllib/self_training/mcc.py and examples/domain_adaptation/
image_classification/mcc.py @ c4aa59e.
"""

from __future__ import annotations

from torch import Tensor

from dgsamp.algorithms.prediction_entropy import certainty_weights
from dgsamp.algorithms.tllib_adaptation import TllibAdaptation, trade_off
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def minimum_class_confusion(logits: Tensor, temperature: float) -> Tensor:
    """MCC of target logits [n, K] (a scalar; 0 when every row of C̃ is one-hot)."""
    num_classes = logits.shape[1]
    p = (logits / temperature).softmax(dim=1)
    weights = certainty_weights(p)
    confusion = (p * weights[:, None]).T @ p
    confusion = confusion / confusion.sum(dim=1)
    # the diagonal's sum, not trace(): trace's backward reads the gradient on the host (a GPU sync)
    return (confusion.sum() - confusion.diagonal().sum()) / num_classes


@register_algorithm("MCC")
class MCC(TllibAdaptation):
    """Minimise the certainty-weighted confusion between classes on the target."""

    PAPER = (
        "Jin, Wang, Long & Wang: Minimum Class Confusion for Versatile Domain Adaptation, "
        "ECCV 2020, arXiv:1912.03699"
    )
    SOURCE = "tllib tllib/self_training/mcc.py @ c4aa59e"

    HPARAMS = {
        "trade_off": trade_off(1.0, "λ of the MCC term (tllib's --trade-off)"),
        "temperature": HParam(
            2.5, lambda r: r.uniform(1.5, 3.5), "softmax temperature T (tllib's --temperature)",
            minimum=0, exclusive_minimum=True,
        ),
    }

    def transfer_terms(
        self, z_s: Tensor, z_t: Tensor, logits_s: Tensor, logits_t: Tensor
    ) -> dict[str, tuple[float, Tensor]]:
        mcc = minimum_class_confusion(logits_t, self.hparams["temperature"])
        return {"transfer_loss": (self.hparams["trade_off"], mcc)}
