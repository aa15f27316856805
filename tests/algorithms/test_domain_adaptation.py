"""``ADAPTS_TO_UNLABELED`` tells the truth: an algorithm's update depends on the unlabeled
target batches exactly when it declares so (the trainer feeds targets only to those).

Every registered algorithm is built around a tiny featurizer; two copies start from the
same ``state_dict`` and the same RNG state, take one ``update`` on the same labelled
batches, and differ only in the unlabeled target batch.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import timm
import torch
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.hparams import resolve_hparams
from dgsamp.registry import ALGORITHMS, create_algorithm

NUM_CLASSES, NUM_DOMAINS, BATCH, SIZE = 3, 2, 8, 32
ALL = ALGORITHMS.names()


class TinyFeaturizer(nn.Module):
    """x [B, 3, SIZE, SIZE] -> z [B, 8] (a convolution first: ARM widens it)."""

    def __init__(self) -> None:
        super().__init__()
        self.n_outputs = 8
        self.net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * SIZE * SIZE, 16),
                                 nn.Tanh(), nn.Linear(16, self.n_outputs))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


NEEDS_TIMM = {"MIRO"}  # regularises the stages of a timm backbone
# Start where the update reads the target batch: ADDA pre-trains on the sources alone for
# pretrain_steps updates, FixMatch learns from a target example only above its confidence threshold.
FROM_THE_FIRST_TARGET_STEP = {"ADDA": {"pretrain_steps": 0}, "FixMatch": {"threshold": 0.0}}


def build(name: str, seed: int, **overrides) -> Algorithm:
    seed_everything(seed)
    overrides = {**FROM_THE_FIRST_TARGET_STEP.get(name, {}), **overrides}
    hparams = resolve_hparams(ALGORITHMS.get(name), False, 0, {"lr": 1e-2, **overrides})
    featurizer: nn.Module = TinyFeaturizer()
    if name in NEEDS_TIMM:
        featurizer = timm.create_model("test_convnext", pretrained=False, num_classes=0)
        featurizer.n_outputs = featurizer.num_features
    return create_algorithm(name, featurizer, NUM_CLASSES, NUM_DOMAINS, hparams)


@pytest.fixture(scope="module")
def batches() -> tuple[list[tuple[Tensor, Tensor]], Tensor, Tensor]:
    """Labelled minibatches of two source domains and two different target batches."""
    generator = torch.Generator().manual_seed(0)

    def images(shift: float) -> Tensor:
        return torch.randn(BATCH, 3, SIZE, SIZE, generator=generator) + shift

    minibatches = [
        (images(float(d)), torch.randint(0, NUM_CLASSES, (BATCH,), generator=generator))
        for d in range(NUM_DOMAINS)
    ]
    return minibatches, images(-1.0), images(2.0)


def one_update(name: str, state: dict, minibatches, unlabeled) -> tuple[dict[str, Tensor], Tensor]:
    """Losses and final parameters of one update from ``state`` (a fresh copy, same RNG)."""
    algorithm = build(name, seed=1)  # another init: every weight must come from ``state``
    algorithm.load_state_dict(state)
    algorithm.train()
    seed_everything(2)
    losses = algorithm.update(minibatches, unlabeled)
    return losses, torch.cat([p.detach().flatten() for p in algorithm.parameters()])


@pytest.mark.parametrize("name", ALL)
def test_update_depends_on_targets_exactly_when_the_algorithm_adapts(name, batches):
    minibatches, target_a, target_b = batches
    start = build(name, seed=0)
    state = {k: v.clone() for k, v in start.state_dict().items()}
    losses_a, params_a = one_update(name, state, minibatches, [target_a])
    losses_b, params_b = one_update(name, state, minibatches, [target_b])
    if type(start).ADAPTS_TO_UNLABELED:
        assert not torch.equal(losses_a["loss"], losses_b["loss"]), (losses_a, losses_b)
        assert not torch.equal(params_a, params_b)
    else:
        losses_none, params_none = one_update(name, state, minibatches, None)
        for other_losses, other_params in ((losses_b, params_b), (losses_none, params_none)):
            assert losses_a.keys() == other_losses.keys()
            for key in losses_a:
                assert torch.equal(losses_a[key], other_losses[key]), key
            assert torch.equal(params_a, other_params)


def test_the_builtin_adapting_algorithms_declare_it():
    assert Algorithm.ADAPTS_TO_UNLABELED is False
    adapting = {name for name in ALL if ALGORITHMS.get(name).ADAPTS_TO_UNLABELED}
    builtin = {"ERM", "CORAL", "DANN", "CDANN", "MMD", "Mixup", "GroupDRO", "VREx", "IRM"}
    assert adapting & builtin == {"DANN", "CDANN", "CORAL", "MMD"}
    assert all(isinstance(ALGORITHMS.get(name).ADAPTS_TO_UNLABELED, bool) for name in ALL)


def test_flops_cycle_is_one_except_for_alternating_adversarial_steps():
    assert Algorithm.flops_cycle == 1
    for name in ("ERM", "CORAL", "MMD", "IRM", "VREx", "GroupDRO", "Mixup"):
        assert build(name, seed=0).flops_cycle == 1, name
    for name in ("DANN", "CDANN"):
        assert build(name, seed=0).flops_cycle == 2  # k = 1 discriminator step + 1 generator step
        assert build(name, seed=0, d_steps_per_g_step=3).flops_cycle == 4
        assert build(name, seed=0, dann_mode="grl").flops_cycle == 1
