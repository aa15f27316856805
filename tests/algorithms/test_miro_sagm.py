"""MIRO's regulariser at initialisation and its frozen oracle; SAGM's step against a hand
computation. Random 32 px inputs and timm's tiny test models (no download)."""

from __future__ import annotations

import copy
import math

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dgsamp.algorithms.miro import VARIANCE_INIT, miro_layers
from dgsamp.backbones.factory import TimmFeaturizer, create_backbone
from dgsamp.errors import UserError
from dgsamp.hparams import resolve_hparams
from dgsamp.registry import ALGORITHMS, create_algorithm

NUM_CLASSES = 7


def make(name: str, featurizer: nn.Module, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    hparams = resolve_hparams(ALGORITHMS.get(name), False, 0, {"lr": 1e-3, **overrides})
    return create_algorithm(name, featurizer, NUM_CLASSES, 3, hparams)


def convnext(seed: int = 0) -> TimmFeaturizer:
    torch.manual_seed(seed)
    return TimmFeaturizer(timm.create_model("test_convnext", num_classes=0))


def batch(seed: int = 0, n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    def domain() -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, 3, 32, 32, generator=generator)
        return x, torch.randint(0, NUM_CLASSES, (n,), generator=generator)

    return [domain() for _ in range(3)]


# -------------------------------------------------------------------------------- MIRO
def test_miro_fit_term_is_exactly_zero_at_initialisation():
    """Trained featurizer == frozen copy and identity mean encoders: every (z⁰ − z) is 0, so
    R = fit + spread has fit = 0 and equals the variance term alone, L · ½ log 0.1."""
    algorithm = make("MIRO", convnext(), ld=0.1).train()
    x = torch.cat([x for x, _ in batch()])
    _, trained = algorithm.tap.record(algorithm.featurizer, x)
    _, frozen = algorithm.reference_tap.record(algorithm.reference, x)
    assert len(trained) == 4 and all(torch.equal(a, b) for a, b in zip(trained, frozen))
    _, fit, spread = algorithm.regulariser(x)
    closed_form = torch.tensor(len(trained) * 0.5 * math.log(VARIANCE_INIT))
    assert fit.item() == 0.0
    torch.testing.assert_close(spread, closed_form)
    losses = algorithm.update(batch())  # the first step sees the same regulariser
    torch.testing.assert_close(losses["reg_loss"], closed_form)
    torch.testing.assert_close(losses["loss"], losses["class_loss"] + 0.1 * losses["reg_loss"])
    _, fit_after, _ = algorithm.regulariser(x)
    assert fit_after > 0  # the featurizer moved away from the oracle


def test_miro_reference_stays_frozen_and_encoders_learn():
    algorithm = make("MIRO", convnext(), lr_mult=10.0)
    before = copy.deepcopy(algorithm.state_dict())
    algorithm.train()
    for step in range(2):
        algorithm.update(batch(step))
    assert not algorithm.reference.training and algorithm.featurizer.training
    after = algorithm.state_dict()
    for key, value in before.items():
        if key.startswith("reference."):
            assert torch.equal(after[key], value), key
    stem = "featurizer.network.stem.0.weight"
    assert not torch.equal(after[stem], before[stem])
    assert not torch.equal(after["variance_logits.0"], before["variance_logits.0"])
    assert all(not p.requires_grad for p in algorithm.reference.parameters())
    optimized = {id(p) for group in algorithm.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in algorithm.reference.parameters()}
    encoder_group = algorithm.optimizer.param_groups[1]
    assert encoder_group["lr"] == pytest.approx(1e-2) and len(encoder_group["params"]) == 4


def test_miro_resumes_from_state_dict_identically():
    original = make("MIRO", convnext(0))
    original.train()
    original.update(batch(0))
    resumed = make("MIRO", convnext(1), seed=1)  # other weights, reference included
    resumed.load_state_dict(copy.deepcopy(original.state_dict()))
    resumed.optimizer.load_state_dict(copy.deepcopy(original.optimizer.state_dict()))
    resumed.train()
    expected, got = original.update(batch(1)), resumed.update(batch(1))
    assert expected.keys() == got.keys() == {"loss", "class_loss", "reg_loss"}
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("resnet18", ["maxpool", "layer1", "layer2", "layer3", "layer4"]),
        ("test_convnext", ["stages.0", "stages.1", "stages.2", "stages.3"]),
        ("vit_tiny_patch16_224", ["patch_embed", "blocks.2", "blocks.5", "blocks.8", "blocks.11"]),
    ],
)
def test_miro_layers_per_family(arch, expected):
    assert [name for name, _ in miro_layers(timm.create_model(arch, num_classes=0))] == expected


def test_miro_on_a_non_timm_featurizer_is_a_user_error():
    featurizer = create_backbone("mnist_cnn", (1, 28, 28)).featurizer
    with pytest.raises(UserError, match="MIRO needs a timm backbone"):
        make("MIRO", featurizer)


# -------------------------------------------------------------------------------- SAGM
class Tiny(nn.Module):
    """x [N, 5] -> z [N, 4]: Linear then BatchNorm (running statistics to watch)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.norm, self.n_outputs = nn.Linear(5, 4), nn.BatchNorm1d(4), 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(x))


def hand_sagm_step(model: nn.Module, optimizer, x, y, rho: float, alpha: float):
    """½(∇L(θ) + ∇L(θ + (ρ/‖g‖ − α) g)), the second pass on a copy of the buffers."""
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    loss = F.cross_entropy(model(x), y)  # running statistics: this batch, once
    grads = torch.autograd.grad(loss, params)
    norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    scale = rho / (norm + 1e-12) - alpha
    perturbed = {n: (p + scale * g).detach().requires_grad_() for n, p, g in zip(names, params, grads)}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    perturbed_loss = F.cross_entropy(functional_call(model, {**perturbed, **buffers}, (x,)), y)
    perturbed_grads = torch.autograd.grad(perturbed_loss, list(perturbed.values()))
    for p, g, gp in zip(params, grads, perturbed_grads):
        p.grad = (g + gp) / 2
    optimizer.step()
    return loss.detach(), perturbed_loss.detach()


def test_sagm_update_equals_a_hand_computed_step():
    torch.manual_seed(0)
    rho, alpha, lr, weight_decay = 0.05, 0.01, 0.01, 1e-3
    algorithm = make("SAGM", Tiny(), rho=rho, alpha=alpha, lr=lr, weight_decay=weight_decay).train()
    model = copy.deepcopy(nn.Sequential(algorithm.featurizer, algorithm.classifier))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    for step in range(2):  # the second step also checks Adam's state
        generator = torch.Generator().manual_seed(step)
        x = torch.randn(8, 5, generator=generator)
        y = torch.randint(0, NUM_CLASSES, (8,), generator=generator)
        losses = algorithm.update([(x, y)])
        loss, perturbed_loss = hand_sagm_step(model, optimizer, x, y, rho, alpha)
        torch.testing.assert_close(losses["loss"], loss)
        torch.testing.assert_close(losses["perturbed_loss"], perturbed_loss)
        ours = dict(nn.Sequential(algorithm.featurizer, algorithm.classifier).state_dict())
        for key, value in model.state_dict().items():  # weights and BN running statistics
            torch.testing.assert_close(ours[key], value, rtol=1e-5, atol=1e-7, msg=key)
    assert algorithm.featurizer.norm.momentum == 0.1  # restored after the perturbed pass


def test_default_hparams_are_the_papers():
    miro = resolve_hparams(ALGORITHMS.get("MIRO"), False, 0)
    sagm = resolve_hparams(ALGORITHMS.get("SAGM"), False, 0)
    assert (miro["ld"], miro["lr_mult"], sagm["rho"], sagm["alpha"]) == (0.1, 10.0, 0.05, 0.001)
    for seed in range(1, 6):
        assert resolve_hparams(ALGORITHMS.get("MIRO"), False, seed)["ld"] in (1, 0.1, 0.01, 0.001)
        drawn = resolve_hparams(ALGORITHMS.get("SAGM"), False, seed)
        assert drawn["rho"] in (0.01, 0.02, 0.05, 0.1) and drawn["alpha"] in (5e-4, 1e-3)
