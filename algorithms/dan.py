"""DAN: Deep Adaptation Networks (Long et al., ICML 2015), as tllib trains it.

    L = CE(g(z_s), y_s) + λ · MK-MMD(z_s, z_t)

MK-MMD (``mk_mmd.py``) sums five Gaussian kernels with bandwidths σ² = α · mean pairwise
squared distance, α = 2^k for k = −3..1 (1/8, 1/4, 1/2, 1, 2: tllib's dan.py script), on
the featurizer's outputs z [n, D]. ``linear_mmd`` (tllib's default, its ``--non-linear``
flag unset) takes the linear-time estimate, else the quadratic one. The featurizer runs on
the source and the target batch separately, as tllib's script does. λ = ``trade_off``
(tllib's ``--trade-off``, 1.0).

Training modes: a GradSamp epoch samples every parameter (featurizer and classifier: DAN
has no other); the kernels have no state, their bandwidths come from each batch.

Reference: tllib tllib/alignment/dan.py and examples/domain_adaptation/image_classification/
dan.py @ c4aa59e.
"""

from __future__ import annotations

from torch import Tensor

from dgsamp.algorithms.mk_mmd import GaussianKernel, kernel_mmd
from dgsamp.algorithms.tllib_adaptation import TllibAdaptation, trade_off
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

DAN_KERNELS = tuple(GaussianKernel(alpha=2.0**k) for k in range(-3, 2))


@register_algorithm("DAN")
class DAN(TllibAdaptation):
    """Match source and target features under a multi-kernel MMD."""

    PAPER = (
        "Long, Cao, Wang & Jordan: Learning Transferable Features with Deep Adaptation "
        "Networks, ICML 2015, arXiv:1502.02791"
    )
    SOURCE = "tllib tllib/alignment/dan.py @ c4aa59e"

    HPARAMS = {
        "trade_off": trade_off(1.0, "λ of the MK-MMD term (tllib's --trade-off)"),
        "linear_mmd": HParam(True, lambda r: True, "linear-time MMD estimate (tllib: not --non-linear)"),
    }
    SEPARATE_TARGET_PASS = True

    def transfer_terms(
        self, z_s: Tensor, z_t: Tensor, logits_s: Tensor, logits_t: Tensor
    ) -> dict[str, tuple[float, Tensor]]:
        mmd = kernel_mmd([z_s], [z_t], [DAN_KERNELS], linear=self.hparams["linear_mmd"])
        return {"transfer_loss": (self.hparams["trade_off"], mmd)}
