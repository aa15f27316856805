"""MDD: margin disparity discrepancy (Zhang et al., ICML 2019), tllib's classification form.

Features f = b(featurizer(x)) [N, d] (bottleneck b: Linear(D, d) -> BN -> ReLU ->
Dropout(0.5)) feed the main head h and, through a gradient reversal R_λ, an adversarial
head h' (both Linear(d, w) -> ReLU -> Dropout(0.5) -> Linear(w, K), w = d as tllib's
mdd.py builds them). With ŷ_i = argmax h(f_i) (no gradient), p' = softmax(h'(f)):

    D_γ = −γ · 1/n_s Σ_{i∈s} CE(h'(f_i), ŷ_i) + 1/n_t Σ_{i∈t} log(min(1 − p'_{i,ŷ_i} + 1e-6, 1))
    L   = CE(h(f_s), y) − η D_γ                                     η = ``trade_off``

γ = ``margin`` (4 in tllib's mdd.py and its Office scripts). One backward pass trains h' to
maximise D_γ (it descends −η D_γ) while R_λ hands the featurizer and bottleneck the reversed
gradient, so they minimise it. λ follows tllib's warm start
λ(i) = 2 (hi − lo) / (1 + exp(−α i / N)) − (hi − lo) + lo with α = 1, lo = 0, hi = 0.1,
N = 1000 (``warm_start_grl.py``), i counting updates. tllib's loss averages the summed per-example
terms, equal to the two means above when n_s = n_t; here each domain is averaged on its own,
so several source domains or a different target batch size stay well defined.

Sources and targets pass through the network together (one BatchNorm batch), as in tllib.
``update`` reports ``loss`` = L, ``class_loss`` and ``transfer_loss`` = −D_γ (tllib's name).

Training modes: GradSamp samples every parameter, the adversarial head h' included. That is
right: h' is trained on every update (it maximises D_γ) and only shapes the featurizer's
gradient; ``predict`` never uses it. The warm-start step i is a buffer, not a parameter: a
GradSamp epoch does not move it (it counts backprop updates only), and checkpoints keep it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.bottleneck_classifier import BottleneckClassifier
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.algorithms.target_batches import pooled_targets
from dgsamp.algorithms.warm_start_grl import TllibWarmStartGRL
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def margin_disparity_discrepancy(
    logits_s: Tensor, adv_s: Tensor, logits_t: Tensor, adv_t: Tensor, margin: float
) -> Tensor:
    """D_γ above from main-head logits and adversarial-head logits, each ``[n, K]``."""
    predicted_s, predicted_t = logits_s.argmax(1), logits_t.argmax(1)
    source_term = -margin * F.cross_entropy(adv_s, predicted_s)
    p_t = adv_t.softmax(1).gather(1, predicted_t[:, None]).squeeze(1)
    target_term = torch.log((1.0 - p_t + 1e-6).clamp(max=1.0)).mean()
    return source_term + target_term


def mdd_head(width_in: int, width: int, num_classes: int) -> nn.Sequential:
    """Linear -> ReLU -> Dropout(0.5) -> Linear, weights N(0, 0.01), biases 0 (tllib)."""
    head = nn.Sequential(
        nn.Linear(width_in, width), nn.ReLU(), nn.Dropout(0.5), nn.Linear(width, num_classes)
    )
    for layer in (head[0], head[3]):
        nn.init.normal_(layer.weight, 0.0, 0.01)
        nn.init.zeros_(layer.bias)
    return head


def mdd_bottleneck(n_features: int, width: int) -> nn.Sequential:
    """Linear -> BN -> ReLU -> Dropout(0.5), Linear weights N(0, 0.005), biases 0.1 (tllib)."""
    bottleneck = nn.Sequential(
        nn.Linear(n_features, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(0.5)
    )
    nn.init.normal_(bottleneck[0].weight, 0.0, 0.005)
    nn.init.constant_(bottleneck[0].bias, 0.1)
    return bottleneck


@register_algorithm("MDD")
class MDD(Algorithm):
    """Classify the sources while an adversarial head measures the margin disparity."""

    PAPER = (
        "Zhang, Liu, Long & Jordan: Bridging Theory and Algorithm for Domain Adaptation, "
        "ICML 2019, arXiv:1904.05801"
    )
    SOURCE = (
        "tllib tllib/alignment/mdd.py and examples/domain_adaptation/image_classification/mdd.py "
        "@ c4aa59e"
    )
    HPARAMS = {
        "margin": HParam(
            4.0, lambda r: r.choice([2.0, 3.0, 4.0]), "γ of the margin disparity (tllib: 4)",
            minimum=0, exclusive_minimum=True,
        ),
        "trade_off": HParam(
            1.0, lambda r: 10 ** r.uniform(-1, 0.5), "η of the transfer loss (tllib: 1)", minimum=0
        ),
        "bottleneck_dim": HParam(
            1024, lambda r: int(r.choice([1024, 2048])),
            "bottleneck and head width (tllib mdd.sh: 1024 on Office-31, 2048 on Office-Home)",
            minimum=1,
        ),
        "grl_max_iters": HParam(1000, lambda r: 1000, "N of the GRL warm start (tllib: 1000)", minimum=0),
    }
    ADAPTS_TO_UNLABELED = True
    NEEDS_TARGET = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        width = self.hparams["bottleneck_dim"]
        self.classifier = BottleneckClassifier(
            mdd_bottleneck(featurizer.n_outputs, width), mdd_head(width, width, num_classes)
        )
        self.adversarial_head = mdd_head(width, width, num_classes)
        self.reversal = TllibWarmStartGRL(hi=0.1, max_iters=self.hparams["grl_max_iters"])
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x_source, y, _ = concat_minibatches(minibatches)
        x = torch.cat([x_source, pooled_targets(unlabeled, "MDD")])
        n_source = y.shape[0]
        f = self.classifier.features(self.featurizer(x))
        logits = self.classifier.head(f)
        adversarial = self.adversarial_head(self.reversal(f))  # λ_i, then i advances
        class_loss = F.cross_entropy(logits[:n_source], y)
        transfer_loss = -margin_disparity_discrepancy(
            logits[:n_source], adversarial[:n_source], logits[n_source:], adversarial[n_source:],
            self.hparams["margin"],
        )
        loss = class_loss + self.hparams["trade_off"] * transfer_loss
        self.step(loss)
        return {
            "loss": loss.detach(),
            "class_loss": class_loss.detach(),
            "transfer_loss": transfer_loss.detach(),
        }
