"""The training step shared by tllib's domain-adaptation methods (DAN, JAN, CDAN, BSP, MCC, DANN).

Every tllib script (examples/domain_adaptation/image_classification/*.py @ c4aa59e) takes one
step on a labelled source batch (x_s, y_s) and an unlabelled target batch x_t as

    z_s, z_t = f(x_s), f(x_t)          one featurizer pass on [x_s; x_t] (DAN: two passes)
    g_s, g_t = g(z_s), g(z_t)          logits [n, K]
    L = CE(g_s, y_s) + Σ_k λ_k T_k(z_s, z_t, g_s, g_t)

with one optimiser over every parameter: featurizer, classifier and the method's own heads
(discriminator, ...). A method names its terms T_k and their weights λ_k (tllib's
``--trade-off`` flags) in ``transfer_terms``. x_s concatenates the source domains'
minibatches (tllib draws a multi-source batch from the union of the sources) and x_t the
target domains' batches.

The optimiser comes from ``default_optimizer`` (DomainBed's Adam under the DomainBed and
dgsamp protocols; a protocol preset may substitute tllib's SGD); ``update`` returns
``loss``, ``class_loss`` and every term unweighted, all detached.

Without target batches (``--task domain_generalization``) these methods have nothing to
align: ``update`` raises a one-line ``UserError``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.errors import UserError
from dgsamp.hparams import HParam


def trade_off(default: float, help_text: str, low: float = -1.0, high: float = 1.0) -> HParam:
    """A non-negative loss weight λ; random search draws 10^U(low, high)."""
    return HParam(default, lambda r: 10 ** r.uniform(low, high), help_text, minimum=0)


class TllibAdaptation(Algorithm):
    """L = CE on the sources + Σ_k λ_k T_k, one optimiser step over every parameter."""

    ADAPTS_TO_UNLABELED = True
    NEEDS_TARGET = True

    SEPARATE_TARGET_PASS: ClassVar[bool] = False
    """True: the featurizer runs on x_s and x_t separately (tllib's DAN script), so its
    BatchNorm layers normalise each domain with its own statistics."""

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.build_heads()
        self.optimizer = self.default_optimizer()

    def build_heads(self) -> None:
        """Create the method's own submodules; called before the optimiser is built."""

    def transfer_terms(
        self, z_s: Tensor, z_t: Tensor, logits_s: Tensor, logits_t: Tensor
    ) -> dict[str, tuple[float, Tensor]]:
        """{name: (λ, T)} for features z [n, D] and logits [n, K] of each domain."""
        raise NotImplementedError

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        if not unlabeled:
            raise UserError(
                f"{type(self).__name__} aligns source and target domains and needs unlabelled "
                "target batches: train it with --task domain_adaptation"
            )
        x_s, y_s, _ = concat_minibatches(minibatches)
        x_t = torch.cat(list(unlabeled))
        if self.SEPARATE_TARGET_PASS:
            z_s, z_t = self.featurizer(x_s), self.featurizer(x_t)
            z = torch.cat([z_s, z_t])
        else:
            z = self.featurizer(torch.cat([x_s, x_t]))
            z_s, z_t = z.split([x_s.shape[0], x_t.shape[0]])
        logits_s, logits_t = self.classifier(z).split([x_s.shape[0], x_t.shape[0]])
        class_loss = F.cross_entropy(logits_s, y_s)
        terms = self.transfer_terms(z_s, z_t, logits_s, logits_t)
        loss = class_loss + sum(weight * term for weight, term in terms.values())
        self.step(loss, self.optimizer)
        return {
            "loss": loss.detach(),
            "class_loss": class_loss.detach(),
            **{name: term.detach() for name, (_, term) in terms.items()},
        }
