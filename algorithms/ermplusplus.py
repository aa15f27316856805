"""ERM++ (Teterwak et al., WACV 2025) as DomainBed's ``ERMPlusPlus`` runs under train.py.

ERM with a linear-probing warm-up and a simple moving average (SMA) of the weights.
With θ = (f, g) the network, t = 1, 2, ... the update and T_lp = ``linear_steps``:

    t ≤ T_lp + 1:  g ← Adam_lp step on 1/N Σ_i CE(g(f(x_i)), y_i)      (lr ``linear_lr``, f fixed)
    t > T_lp + 1:  f, g ← Adam step on the same loss                  (lr ``lr``, a fresh Adam)
    SMA θ̄ (parameters and BatchNorm statistics):  θ̄_t = θ_t for t < 600, then
                   θ̄_t = (c θ̄_{t−1} + θ_t) / (c + 1),  c = t − 599     (the mean of θ_599 .. θ_t)
    then θ̄'s BatchNorm statistics see the batch: one forward of θ̄ in train mode on x
    (skipped when the featurizer freezes BatchNorm)

``predict`` uses θ̄ in eval mode. 600 is DomainBed's fixed ``sma_start_iter``
(``AVERAGE_START``). During the warm-up the featurizer runs without autograd (DomainBed
backpropagates into it and never steps it). The step count lives in ``state_dict``.

Not here (docs/algorithms.md): the ERM++ recipe's auto-LR protocol (DomainBed's
``train_autolr.py``: ReduceLROnPlateau on training-domain validation loss, then retraining
on all data with the found schedule), its DINOv2 featurizer and LARS (``lars`` is accepted
only as False, its only DomainBed value). The 2024 backbone (``resnet50.ram_in1k``) is a
``--backbone`` choice. ``unlabeled`` is ignored.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm, make_optimizer
from dgsamp.algorithms.counter import StepCounter
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


@register_algorithm("ERMPlusPlus")
class ERMPlusPlus(Algorithm):
    """ERM after a linear-probing warm-up, predicting with a moving average of the weights."""

    HPARAMS = {
        "linear_lr": HParam(
            5e-5, lambda r: 10 ** r.uniform(-5, -3.5), "learning rate of the linear warm-up",
            minimum=0, exclusive_minimum=True,
        ),
        "linear_steps": HParam(500, lambda r: 500, "steps T_lp of the linear warm-up", minimum=0),
        "lars": HParam(False, lambda r: False, "LARS optimizer (not provided)", choices=(False,)),
    }
    PAPER = (
        "Teterwak, Saito, Tsiligkaridis, Saenko & Plummer: ERM++: An Improved Baseline for "
        "Domain Generalization, WACV 2025, arXiv:2304.01973"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ b93c22a1cfc3b2428398272c1a116c8de1f4139e"
    AVERAGE_START: ClassVar[int] = 600

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        hp = self.hparams
        self.optimizer = self.default_optimizer([*self.featurizer.parameters(), *self.classifier.parameters()])
        self.linear_optimizer = make_optimizer(self.classifier.parameters(), hp, hp["linear_lr"])
        self.average = nn.ModuleDict(
            {"featurizer": copy.deepcopy(self.featurizer), "classifier": copy.deepcopy(self.classifier)}
        )
        self.average.requires_grad_(False)
        self.steps = StepCounter()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, _ = concat_minibatches(minibatches)
        if self.steps.value > self.hparams["linear_steps"]:
            optimizer, z = self.optimizer, self.featurizer(x)
        else:
            optimizer = self.linear_optimizer
            with torch.no_grad():
                z = self.featurizer(x)
        loss = F.cross_entropy(self.classifier(z), y)
        self.step(loss, optimizer)
        self.update_average()
        if not getattr(self.featurizer, "freeze_bn", False):
            self.average.train()
            with torch.no_grad():
                self.average["classifier"](self.average["featurizer"](x))
        return {"loss": loss.detach(), "class_loss": loss.detach()}

    @torch.no_grad()
    def update_average(self) -> None:
        """θ̄ ← θ before ``AVERAGE_START``, then the running mean (every float state tensor)."""
        step = self.steps.increment()
        average, current = [], []
        for module in ("featurizer", "classifier"):
            mine = getattr(self, module).state_dict()
            for name, tensor in self.average[module].state_dict().items():
                if "num_batches_tracked" not in name:
                    average.append(tensor)
                    current.append(mine[name])
        if step < self.AVERAGE_START:
            torch._foreach_copy_(average, current)
            return
        count = step - self.AVERAGE_START + 1
        torch._foreach_mul_(average, count)
        torch._foreach_add_(average, current)
        torch._foreach_div_(average, 1.0 + count)

    def predict(self, x: Tensor) -> Tensor:
        self.average.eval()
        return self.average["classifier"](self.average["featurizer"](x))
