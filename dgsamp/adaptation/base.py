"""What every test-time adaptation method is: an object that predicts a stream of unlabeled
test batches and adapts to each as it goes.

    adapter = T3A(algorithm, {"filter_K": 100})
    logits = adapter.adapt_and_predict(x)       # x[B, C, H, W] -> logits[B, K]

Methods are built on a *copy* of the run's algorithm (its weights are never touched) and
see every batch once, in stream order; ``adapt_and_predict`` returns the logits the
method predicts for that batch (for the gradient methods: the logits of the forward pass
whose loss updates the model, as Tent's code and the T3A repository's do).

Reference: Iwasawa & Matsuo, "Test-Time Classifier Adjustment Module for Model-Agnostic
Domain Generalization", NeurIPS 2021 (T3A); their DomainBed fork matsuolab/T3A
``domainbed/adapt_algorithms.py`` and ``domainbed/scripts/unsupervised_adaptation.py`` @
4228a5b3982c4ba9b30fb2c7ca22b6269c176a0f set the hparams and protocol followed here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from dgsamp.errors import UserError


def softmax_entropy(logits: Tensor) -> Tensor:
    """Per-example entropy of softmax(logits) in nats: H_i = -Σ_k p_ik log p_ik; [B, K] -> [B]."""
    return -(logits.softmax(dim=1) * logits.log_softmax(dim=1)).sum(dim=1)


def batch_norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1d/2d/3d, timm's BatchNormAct2d included) inside ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def use_batch_statistics(layers: Iterable[nn.modules.batchnorm._BatchNorm]) -> None:
    """Make each BatchNorm layer normalise with the statistics of the batch it sees, in eval
    mode too, and keep no running statistics (Tent's ``configure_model``)."""
    for layer in layers:
        layer.track_running_stats = False
        layer.running_mean = None
        layer.running_var = None


class TestTimeAdapter:
    """Base class: a method sets ``NAME``, ``HPARAMS`` (its published defaults) and
    implements ``adapt_and_predict``. ``algorithm`` is copied; the copy is in eval mode."""

    NAME: ClassVar[str] = ""
    HPARAMS: ClassVar[dict[str, Any]] = {}
    """The method's hyperparameters and their defaults (the T3A repository's values)."""

    def __init__(self, algorithm: nn.Module, hparams: Mapping[str, Any]) -> None:
        self.hparams = {**self.HPARAMS, **hparams}
        self.model = copy.deepcopy(algorithm).eval()
        self.model.requires_grad_(False)

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @classmethod
    def check_model(cls, algorithm: nn.Module) -> None:
        """Refuse, with a one-line UserError, a model the method cannot adapt (default: any is fine)."""


def classifier_of(algorithm: nn.Module, method: str, linear: bool = True) -> nn.Module:
    """The classifier ``g`` of an algorithm that predicts ``g(f(x))`` (DomainBed's
    ``Algorithm.predict``; ``linear``: ``g`` must be one ``nn.Linear``), or a one-line
    UserError naming why ``method`` cannot wrap it."""
    from dgsamp.algorithms.base import Algorithm

    name = type(algorithm).__name__
    if not isinstance(algorithm, Algorithm) or type(algorithm).predict is not Algorithm.predict:
        raise UserError(f"{method} needs a model that predicts classifier(featurizer(x)); {name} predicts "
                        "otherwise, so its classifier cannot be wrapped: pick another --method")
    if linear and not isinstance(algorithm.classifier, nn.Linear):
        raise UserError(f"{method} needs a linear classifier on the features; this {name} run has "
                        f"{type(algorithm.classifier).__name__} (nonlinear_classifier): pick another --method")
    return algorithm.classifier


class GradientAdapter(TestTimeAdapter):
    """A method that takes ``steps`` Adam steps of ``loss(logits)`` per test batch, on the
    parameters ``adapted_parameters`` names, at ``lr = alpha * run lr`` with the run's
    weight decay (the T3A repository's ``configure_model_optimizer``)."""

    HPARAMS: ClassVar[dict[str, Any]] = {"alpha": 1.0, "steps": 1}

    def __init__(self, algorithm: nn.Module, hparams: Mapping[str, Any]) -> None:
        super().__init__(algorithm, hparams)
        self.configure()
        parameters = list(self.adapted_parameters())
        for parameter in parameters:
            parameter.requires_grad_(True)
        run_hparams = getattr(algorithm, "hparams", {})
        self.optimizer = torch.optim.Adam(parameters, lr=float(self.hparams["alpha"]) * float(run_hparams["lr"]),
                                          weight_decay=float(run_hparams.get("weight_decay", 0.0)))

    def configure(self) -> None:
        """Change the copied model before the optimizer is built (default: nothing)."""

    def adapted_parameters(self) -> Iterable[nn.Parameter]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.model.predict(x)

    def loss(self, logits: Tensor) -> Tensor | None:
        """The adaptation loss of one batch's logits; None: no step on this batch."""
        raise NotImplementedError

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        logits = None
        for _ in range(int(self.hparams["steps"])):
            with torch.enable_grad():
                logits = self.forward(x)
                loss = self.loss(logits)
                if loss is not None:
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
        return logits.detach()
