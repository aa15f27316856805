"""The interface every algorithm implements (DomainBed's), and its shared pieces.

An algorithm owns a featurizer ``f: x[B, C, H, W] -> z[B, D]``, a classifier
``g: z -> logits[B, K]``, and its optimizers. The trainer calls

    losses = algorithm.update(minibatches, unlabeled)   # one optimisation step
    logits = algorithm.predict(x)                        # evaluation

``minibatches`` is one ``(x, y)`` pair per training domain; ``unlabeled`` is one ``x`` per
target domain in domain adaptation, else None. ``update`` returns detached scalar tensors
(never ``.item()``: no host synchronisation inside the step loop).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from dgsamp.hparams import HParam


class Algorithm(nn.Module):
    """Base class: subclasses set ``HPARAMS`` and implement ``update``.

    Subclasses override the class attributes below as plain class attributes, or as a
    read-only property where the value depends on the hparams (DANN's ``flops_cycle``).
    """

    HPARAMS: ClassVar[dict[str, HParam]] = {}
    """The algorithm's own hyperparameters (the common ones live in ``dgsamp.hparams``)."""

    ADAPTS_TO_UNLABELED: ClassVar[bool] = False
    """True when ``update`` uses the unlabeled target batches of domain adaptation (DANN,
    CDANN, CORAL, MMD); the trainer feeds them only to such algorithms."""

    NEEDS_TARGET: ClassVar[bool] = False
    """True when the method cannot train without target batches (tllib's DA methods): a run
    without a target domain is refused before any work."""

    flops_cycle: ClassVar[int] = 1
    """Update steps after which the op pattern (and so the FLOPs per step) repeats; the
    trainer meters FLOPs over this many steps. DANN alternating: ``d_steps_per_g_step + 1``."""

    PER_DOMAIN_PASSES: ClassVar[bool] = False
    """True when ``update`` can call the featurizer once per domain, as DomainBed's code does
    (CORAL, MMD, GroupDRO, Mixup): BatchNorm then normalises each domain with its own batch
    statistics. ``--featurizer_passes`` selects it (the DomainBed presets do)."""

    per_domain_passes: bool = False
    """Set by the trainer: call the featurizer per domain (``minibatches.forward_each``)
    instead of once on all domains concatenated. Only read when ``PER_DOMAIN_PASSES``."""

    PAPER: ClassVar[str] = ""
    """The method's paper: authors, venue, year, arXiv id ("" when not stated)."""

    SOURCE: ClassVar[str] = ""
    """The source of truth for its updates: "DomainBed domainbed/algorithms.py @ <commit>",
    or the paper ("" when not stated)."""

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__()
        self.featurizer = featurizer
        self.num_classes = num_classes
        self.num_domains = num_domains
        self.hparams = dict(hparams)
        self.classifier = make_classifier(
            featurizer.n_outputs, num_classes, bool(self.hparams.get("nonlinear_classifier", False))
        )
        dropout = getattr(featurizer, "feature_dropout", None)
        if isinstance(dropout, nn.Dropout) and "resnet_dropout" in self.hparams:
            # DomainBed's ResNet drops out its pooled features; timm featurizers carry that
            # Dropout (``backbones/factory.py``), the backbone is built before the hparams reach it
            dropout.p = float(self.hparams["resnet_dropout"])

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        raise NotImplementedError

    def predict(self, x: Tensor) -> Tensor:
        return self.classifier(self.featurizer(x))

    def default_optimizer(self, parameters=None) -> torch.optim.Optimizer:
        """The protocol's optimizer over ``parameters`` (by default every parameter of the
        algorithm, in registration order): DomainBed's Adam, or tllib's SGD where the hparam
        ``optimizer`` says ``sgd``. ``backbone_lr_mult`` != 1 puts the backbone's parameters
        (``featurizer.backbone`` when a bottleneck wraps it, else the whole featurizer) in a
        group of their own at that multiple of ``lr``, as tllib's ``get_parameters`` does."""
        parameters = list(parameters if parameters is not None else self.parameters())
        multiple = float(self.hparams.get("backbone_lr_mult", 1.0))
        if multiple == 1.0:
            return make_optimizer(parameters, self.hparams)
        backbone = getattr(self.featurizer, "backbone", self.featurizer)
        in_backbone = {id(p) for p in backbone.parameters()}
        groups = [{"params": [p for p in parameters if id(p) in in_backbone], "lr": self.hparams["lr"] * multiple},
                  {"params": [p for p in parameters if id(p) not in in_backbone]}]
        return make_optimizer([g for g in groups if g["params"]], self.hparams)

    def step(self, loss: Tensor, optimizer: torch.optim.Optimizer | None = None) -> None:
        """One gradient step on ``loss``: zero the gradients, backpropagate, step ``optimizer``
        (``self.optimizer`` by default)."""
        optimizer = optimizer or self.optimizer
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer this algorithm steps (checkpointing and the LR schedule use it)."""
        return [value for value in vars(self).values() if isinstance(value, torch.optim.Optimizer)]


def make_classifier(n_features: int, num_classes: int, nonlinear: bool = False) -> nn.Module:
    """DomainBed's ``networks.Classifier``, z[B, D] -> logits[B, K].

    linear (default): Linear(D, K)
    ``nonlinear``:    Linear(D, D//2) -> ReLU -> Linear(D//2, D//4) -> ReLU -> Linear(D//4, K)
    """
    if not nonlinear:
        return nn.Linear(n_features, num_classes)
    half, quarter = n_features // 2, n_features // 4
    return nn.Sequential(
        nn.Linear(n_features, half),
        nn.ReLU(),
        nn.Linear(half, quarter),
        nn.ReLU(),
        nn.Linear(quarter, num_classes),
    )


def make_optimizer(
    parameters,
    hparams: dict,
    lr: float | None = None,
    weight_decay: float | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """The hparams' optimizer: Adam as in DomainBed (fused when every parameter lives on a CUDA
    device), or, with ``optimizer`` = ``sgd``, SGD with ``momentum`` and ``nesterov`` (tllib).

    ``parameters``: tensors, or parameter groups (dicts with ``params`` and maybe ``lr``).
    ``lr`` / ``weight_decay`` default to ``hparams["lr"]`` / ``hparams["weight_decay"]``;
    adversarial algorithms pass their own (DANN: ``lr_d``, ``weight_decay_d``, betas
    ``(beta1, 0.9)``).
    """
    items = list(parameters)
    if items and isinstance(items[0], dict):
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in items]
        tensors = [p for g in groups for p in g["params"]]
    else:
        groups = tensors = [p for p in items if p.requires_grad]
    lr = hparams["lr"] if lr is None else lr
    weight_decay = hparams["weight_decay"] if weight_decay is None else weight_decay
    if hparams.get("optimizer", "adam") == "sgd":
        return torch.optim.SGD(groups, lr=lr, weight_decay=weight_decay, momentum=hparams["momentum"],
                               nesterov=bool(hparams["nesterov"]))
    fused = bool(tensors) and all(p.is_cuda for p in tensors)
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, betas=betas, fused=fused or None)
