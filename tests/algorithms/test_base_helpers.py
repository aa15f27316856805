"""``Algorithm.default_optimizer`` and ``Algorithm.step``: the two helpers every method uses.

The expected updates are recomputed here with a plain ``torch.optim.Adam`` on a copy of
the same network (DomainBed's optimizer: Adam with the hparams' lr and weight decay).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from dgsamp.algorithms.arm import ARM
from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.erm import ERM

HPARAMS = {"lr": 0.01, "weight_decay": 0.001}


class Flat(nn.Module):
    """x [B, 4] -> z [B, 3]."""

    n_outputs = 3

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_default_optimizer_is_adam_over_every_trainable_parameter_in_order():
    torch.manual_seed(0)
    algorithm = Algorithm(Flat(), num_classes=2, num_domains=1, hparams=HPARAMS)
    algorithm.featurizer.linear.bias.requires_grad_(False)
    optimizer = algorithm.default_optimizer()
    assert isinstance(optimizer, torch.optim.Adam)
    (group,) = optimizer.param_groups
    expected = [algorithm.featurizer.linear.weight, algorithm.classifier.weight, algorithm.classifier.bias]
    assert [id(p) for p in group["params"]] == [id(p) for p in expected]
    assert (group["lr"], group["weight_decay"], group["betas"]) == (0.01, 0.001, (0.9, 0.999))
    only_classifier = algorithm.default_optimizer(algorithm.classifier.parameters())
    assert [id(p) for p in only_classifier.param_groups[0]["params"]] == [id(p) for p in expected[1:]]


def test_step_is_one_adam_step_from_zeroed_gradients():
    torch.manual_seed(0)
    algorithm = Algorithm(Flat(), num_classes=2, num_domains=1, hparams=HPARAMS)
    reference = copy.deepcopy(algorithm)
    reference_adam = torch.optim.Adam(reference.parameters(), lr=0.01, weight_decay=0.001)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    algorithm.optimizer = algorithm.default_optimizer()
    for parameter in algorithm.parameters():  # stale gradients must not leak into the step
        parameter.grad = torch.full_like(parameter, 100.0)
    for _ in range(2):
        algorithm.step(F.cross_entropy(algorithm.predict(x), y))
        reference_adam.zero_grad()
        F.cross_entropy(reference.predict(x), y).backward()
        reference_adam.step()
    for mine, theirs in zip(algorithm.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


def test_step_uses_the_optimizer_it_is_given():
    torch.manual_seed(0)
    algorithm = Algorithm(Flat(), num_classes=2, num_domains=1, hparams=HPARAMS)
    algorithm.optimizer = algorithm.default_optimizer()
    classifier_only = algorithm.default_optimizer(algorithm.classifier.parameters())
    featurizer_before = algorithm.featurizer.linear.weight.detach().clone()
    classifier_before = algorithm.classifier.weight.detach().clone()
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    algorithm.step(F.cross_entropy(algorithm.predict(x), y), classifier_only)
    assert torch.equal(algorithm.featurizer.linear.weight, featurizer_before)
    assert not torch.equal(algorithm.classifier.weight, classifier_before)


def test_arm_is_erm_through_its_context_featurizer():
    """ARM reuses ERM's update; its Adam holds the widened first convolution, not the old one."""
    featurizer = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    featurizer.n_outputs = 4
    torch.manual_seed(0)
    arm = ARM(featurizer, num_classes=2, num_domains=2, hparams={**HPARAMS, "batch_size": 2})
    assert isinstance(arm, ERM) and ARM.update is ERM.update
    held = {id(p) for p in arm.optimizer.param_groups[0]["params"]}
    widened = arm.featurizer.network[0].weight
    assert widened.shape == (4, 4, 3, 3) and id(widened) in held
    assert not any(id(p) in held for p in arm.featurizer.context.parameters())
