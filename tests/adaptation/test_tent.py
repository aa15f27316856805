"""Tent (Wang et al., ICLR 2021) and Tent-BN: only the BatchNorm affine parameters move, and
the prediction entropy falls on a shifted stream; the source model is never touched."""

from __future__ import annotations

import pytest
import torch

from dgsamp.adaptation.base import softmax_entropy
from dgsamp.adaptation.tent import Tent
from dgsamp.adaptation.tent_bn import TentBN
from dgsamp.errors import UserError
from tests.adaptation.toy_models import cnn_erm


def shifted_batches(count: int, seed: int = 1) -> list[torch.Tensor]:
    """Inputs unlike anything the toy model's BatchNorm statistics saw: N(2, 3²)."""
    generator = torch.Generator().manual_seed(seed)
    return [2.0 + 3.0 * torch.randn(16, 1, 6, 6, generator=generator) for _ in range(count)]


def test_tent_changes_only_the_batchnorm_affine_parameters_and_leaves_the_source_alone():
    source = cnn_erm()
    before = {name: value.clone() for name, value in source.state_dict().items()}
    adapter = Tent(source, {"alpha": 1.0, "steps": 1})
    for x in shifted_batches(3):
        adapter.adapt_and_predict(x)
    changed = {name for name, value in adapter.model.named_parameters() if not torch.equal(value, before[name])}
    assert changed == {"featurizer.norm.weight", "featurizer.norm.bias"}
    assert all(torch.equal(value, before[name]) for name, value in source.state_dict().items())


def test_tent_lowers_the_prediction_entropy_on_a_shifted_stream():
    adapter = Tent(cnn_erm(), {"alpha": 5.0, "steps": 1})  # lr 5e-2
    held_out = shifted_batches(1, seed=99)[0]
    with torch.no_grad():
        start = softmax_entropy(adapter.forward(held_out)).mean()
    for x in shifted_batches(30):
        adapter.adapt_and_predict(x)
    with torch.no_grad():
        end = softmax_entropy(adapter.forward(held_out)).mean()
    assert end < 0.8 * start


def test_tent_predicts_with_the_batch_statistics_before_its_update():
    source = cnn_erm()
    x = shifted_batches(1)[0]
    adapter = Tent(source, {"alpha": 1.0, "steps": 1})
    logits = adapter.adapt_and_predict(x)
    # by hand: the source network with BatchNorm in training mode (batch statistics), no update yet
    reference = cnn_erm()
    reference.featurizer.norm.train()
    with torch.no_grad():
        expected = reference.predict(x)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_tent_refuses_a_network_without_batchnorm_and_tent_bn_adapts_it():
    group_norm = cnn_erm(norm="group")
    with pytest.raises(UserError, match="tent_bn"):
        Tent.check_model(group_norm)
    TentBN.check_model(group_norm)
    adapter = TentBN(group_norm, {"alpha": 1.0, "steps": 1})
    for x in shifted_batches(2):
        adapter.adapt_and_predict(x)
    assert not torch.equal(adapter.norm.weight, torch.ones(4))
    assert all(torch.equal(a, b) for a, b in zip(adapter.model.parameters(), group_norm.parameters(), strict=True))
