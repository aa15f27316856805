"""BN adaptation (Schneider et al., NeurIPS 2020): each BatchNorm normalises with the test
batch's own mean and biased variance, whatever the running statistics say."""

from __future__ import annotations

import pytest
import torch

from dgsamp.adaptation.bn_adapt import BNAdapt
from dgsamp.errors import UserError
from tests.adaptation.toy_models import cnn_erm


def test_batchnorm_uses_the_test_batch_statistics():
    source = cnn_erm()
    with torch.no_grad():  # running statistics far from anything a batch gives: they must not matter
        source.featurizer.norm.running_mean.fill_(100.0)
        source.featurizer.norm.running_var.fill_(1e-3)
        source.featurizer.norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
        source.featurizer.norm.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    adapter = BNAdapt(source, {})
    seen = {}
    layer = adapter.model.featurizer.norm
    layer.register_forward_hook(lambda module, inputs, output: seen.update(u=inputs[0], y=output))
    x = 2.0 + 3.0 * torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    adapter.adapt_and_predict(x)
    u = seen["u"]
    mean = u.mean(dim=(0, 2, 3), keepdim=True)
    variance = ((u - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)  # biased, by hand
    gamma, beta = layer.weight.view(1, -1, 1, 1), layer.bias.view(1, -1, 1, 1)
    expected = gamma * (u - mean) / torch.sqrt(variance + layer.eps) + beta
    assert torch.allclose(seen["y"], expected, atol=1e-5)
    assert torch.equal(source.featurizer.norm.running_mean, torch.full((4,), 100.0))  # source untouched


def test_bn_adapt_refuses_a_network_without_batchnorm():
    with pytest.raises(UserError, match="no BatchNorm"):
        BNAdapt.check_model(cnn_erm(norm="group"))
