"""ADDA: adversarial discriminative domain adaptation (Tzeng et al., CVPR 2017), as tllib runs it.

Two phases, switched by the number of updates taken (a ``StepCounter`` buffer, so a resumed
run continues in the right phase):

1. updates 1 .. T (T = ``pretrain_steps``; tllib: 3 pre-training epochs of 1,000
   iterations): source-only training of the model h(b(f(x))) (featurizer f, bottleneck
   b = Linear(D, d) -> BN -> ReLU, d = ``bottleneck_dim``, linear head h) on CE(·, y).
2. At update T + 1 the source encoder E_s = b ∘ f is copied into a frozen module
   (``source_encoder``: no parameter of it requires a gradient, its BatchNorm stays in eval
   mode, as tllib's ``set_requires_grad(False)`` and ``freeze_bn``). f and b, initialised
   from the pre-trained weights, continue as the target encoder E_t; the head h stays fixed.
   Each update then takes one step of tllib's adda.py:

       u = R_λ([E_s(x_s); E_t(x_t)])                        [n_s + n_t, d]
       L = ½ (1/n_s Σ_s BCE(D(u_s), 1) + 1/n_t Σ_t BCE(D(u_t), 0))

   D is tllib's ``DomainDiscriminator`` (``tllib_discriminator.py``: 1,024 hidden units, BN,
   sigmoid). One optimiser over E_t and D descends L; R_λ reverses the gradient reaching E_t,
   so E_t learns to make target features look like source features (tllib replaces the
   paper's alternating GAN steps with this reversal). λ follows tllib's warm start with
   hi = 2, α = 1, N = 1000 (``warm_start_grl.py``), counted over adaptation updates.

``predict`` is h(b(f(x))): the source model during pre-training, the target encoder with
the source head afterwards (tllib evaluates ``target_classifier``). ``update`` reports
``loss``, ``class_loss`` (CE of the sources; after the switch under the frozen source model,
for monitoring) and ``transfer_loss`` = L (0 during pre-training).

Training modes: GradSamp samples every parameter that requires a gradient when the run
starts: f, b, h and D. The frozen source copy requires none and is never sampled. GradSamp
moves a tensor by a Gaussian fitted to its change over the previous epoch, so a part that
backprop left untouched in that epoch stays exactly where it is (mean and spread 0): D while
pre-training, h after the switch. The one exception is the first sampled epoch after the
epoch of the switch, which extrapolates h's last pre-training moves. ``pretrain_steps`` counts
backprop updates; a sampled epoch does not advance it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.bottleneck_classifier import BottleneckClassifier, linear_bn_relu
from dgsamp.algorithms.counter import StepCounter
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.algorithms.target_batches import pooled_targets, require_targets
from dgsamp.algorithms.tllib_discriminator import DomainDiscriminator, binary_cross_entropy
from dgsamp.algorithms.warm_start_grl import TllibWarmStartGRL
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


@register_algorithm("ADDA")
class ADDA(Algorithm):
    """Pre-train on the sources, then align a target encoder to the frozen source encoder."""

    PAPER = (
        "Tzeng, Hoffman, Saenko & Darrell: Adversarial Discriminative Domain Adaptation, "
        "CVPR 2017, arXiv:1702.05464"
    )
    SOURCE = (
        "tllib tllib/alignment/adda.py and examples/domain_adaptation/image_classification/adda.py "
        "@ c4aa59e"
    )
    HPARAMS = {
        "pretrain_steps": HParam(
            3000, lambda r: int(r.choice([1000, 3000])),
            "source-only updates before adaptation (tllib: 3 epochs x 1,000)", minimum=0,
        ),
        "bottleneck_dim": HParam(
            256, lambda r: int(r.choice([256, 1024])), "bottleneck width d (tllib: 256)", minimum=1
        ),
        "grl_hi": HParam(2.0, lambda r: 2.0, "final reversal weight of the warm start (tllib: 2)", minimum=0),
        "grl_max_iters": HParam(1000, lambda r: 1000, "N of the GRL warm start (tllib: 1000)", minimum=0),
    }
    ADAPTS_TO_UNLABELED = True
    NEEDS_TARGET = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        hp = self.hparams
        width = hp["bottleneck_dim"]
        self.classifier = BottleneckClassifier(
            linear_bn_relu(featurizer.n_outputs, width), nn.Linear(width, num_classes)
        )
        self.discriminator = DomainDiscriminator(width)
        self.reversal = TllibWarmStartGRL(hi=hp["grl_hi"], max_iters=hp["grl_max_iters"])
        self.steps = StepCounter()
        self.pretrain_optimizer = self.default_optimizer(
            [*self.featurizer.parameters(), *self.classifier.parameters()]
        )
        self.adapt_optimizer = self.default_optimizer(
            [*self.featurizer.parameters(), *self.classifier.bottleneck.parameters(),
             *self.discriminator.parameters()]
        )
        self.source_encoder = nn.Sequential(
            copy.deepcopy(self.featurizer), copy.deepcopy(self.classifier.bottleneck)
        ).requires_grad_(False)
        self.source_encoder.eval()

    def train(self, mode: bool = True) -> ADDA:
        super().train(mode)
        self.source_encoder.eval()  # frozen BatchNorm statistics, in training too
        return self

    @torch.no_grad()
    def freeze_source_encoder(self) -> None:
        """E_s := the pre-trained b ∘ f (weights and BatchNorm statistics)."""
        self.source_encoder[0].load_state_dict(self.featurizer.state_dict())
        self.source_encoder[1].load_state_dict(self.classifier.bottleneck.state_dict())

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        require_targets(unlabeled, "ADDA")  # refused at the first update, not after pre-training
        done = self.steps.value
        self.steps.increment()
        if done < self.hparams["pretrain_steps"]:
            return self.pretrain(minibatches)
        if done == self.hparams["pretrain_steps"]:
            self.freeze_source_encoder()
        return self.adapt(minibatches, pooled_targets(unlabeled, "ADDA"))

    def pretrain(self, minibatches: list[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
        x, y, _ = concat_minibatches(minibatches)
        class_loss = F.cross_entropy(self.predict(x), y)
        self.step(class_loss, self.pretrain_optimizer)
        class_loss = class_loss.detach()
        return {"loss": class_loss, "class_loss": class_loss, "transfer_loss": torch.zeros_like(class_loss)}

    def adapt(self, minibatches: list[tuple[Tensor, Tensor]], x_target: Tensor) -> dict[str, Tensor]:
        x_source, y, _ = concat_minibatches(minibatches)
        with torch.no_grad():
            f_source = self.source_encoder(x_source)
            class_loss = F.cross_entropy(self.classifier.head(f_source), y)
        f_target = self.classifier.features(self.featurizer(x_target))
        d = self.discriminator(self.reversal(torch.cat([f_source, f_target])))
        d_source, d_target = d.split([f_source.shape[0], f_target.shape[0]])
        transfer_loss = 0.5 * (binary_cross_entropy(d_source, 1.0) + binary_cross_entropy(d_target, 0.0))
        self.step(transfer_loss, self.adapt_optimizer)
        transfer_loss = transfer_loss.detach()
        return {"loss": transfer_loss, "class_loss": class_loss, "transfer_loss": transfer_loss}
