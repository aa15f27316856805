"""The unlabeled target batch of methods that cannot train without one (MCD, AFN, MDD, ADDA,
FixMatch): the trainer passes one ``x_t [n_t, ...]`` per target domain, pooled here."""

from __future__ import annotations

import torch
from torch import Tensor

from dgsamp.errors import UserError


def require_targets(unlabeled: list[Tensor] | None, method: str) -> list[Tensor]:
    """``unlabeled`` itself; a one-line ``UserError`` when there is no target batch."""
    if not unlabeled:
        raise UserError(
            f"{method} adapts to unlabeled target data; run it with --task domain_adaptation "
            "and at least one target domain"
        )
    return list(unlabeled)


def pooled_targets(unlabeled: list[Tensor] | None, method: str) -> Tensor:
    """``[sum n_t, ...]``: every target domain's batch concatenated (see ``require_targets``)."""
    return torch.cat(require_targets(unlabeled, method))
