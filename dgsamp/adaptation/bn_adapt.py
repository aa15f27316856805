"""BN adaptation: BatchNorm with the test batch's statistics, nothing trained (Schneider et
al., NeurIPS 2020, "Improving robustness against common corruptions by covariate shift
adaptation"; Nado et al., 2020, "prediction-time batch normalization").

Each BatchNorm layer normalises its input u [B, C, ...] per channel c with the batch's own

    μ_c = mean of u[:, c, ...],  σ²_c = biased variance of u[:, c, ...]
    y = γ_c (u - μ_c) / sqrt(σ²_c + ε) + β_c

instead of the running statistics of training; every other layer, and γ, β, are unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgsamp.adaptation.base import TestTimeAdapter, batch_norm_layers, use_batch_statistics
from dgsamp.errors import UserError


class BNAdapt(TestTimeAdapter):
    """Test-batch BatchNorm statistics (module docstring)."""

    NAME = "bn_adapt"

    def __init__(self, algorithm: nn.Module, hparams) -> None:
        super().__init__(algorithm, hparams)
        use_batch_statistics(batch_norm_layers(self.model))

    @classmethod
    def check_model(cls, algorithm: nn.Module) -> None:
        if not batch_norm_layers(algorithm):
            raise UserError(f"bn_adapt re-estimates BatchNorm statistics and this {type(algorithm).__name__} has "
                            "no BatchNorm layer (e.g. the MNIST CNN uses GroupNorm): use --method t3a or tent_bn")

    @torch.no_grad()
    def adapt_and_predict(self, x: Tensor) -> Tensor:
        return self.model.predict(x)
