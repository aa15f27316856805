"""SHOT-IM and pseudo-labelling: their losses by hand, which parameters they move, and the
hparam checks of ``dgsamp adapt``."""

from __future__ import annotations

import math

import pytest
import torch

from dgsamp.adaptation.build import method_hparams
from dgsamp.adaptation.pseudo_label import PseudoLabel
from dgsamp.adaptation.shot_im import SHOTIM, information_maximization_loss
from dgsamp.errors import UserError
from tests.adaptation.toy_models import cnn_erm


def test_information_maximization_loss_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])  # p = (1/4, 3/4) and (1/2, 1/2)
    entropies = [-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), math.log(2.0)]
    mean = (0.375, 0.625)
    expected = sum(entropies) / 2 + sum(p * math.log(p + 1e-5) for p in mean)
    assert information_maximization_loss(logits).item() == pytest.approx(expected, rel=1e-6)


def test_shot_im_updates_the_featurizer_and_freezes_the_classifier():
    source = cnn_erm()
    adapter = SHOTIM(source, {})
    adapter.adapt_and_predict(torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(adapter.model.featurizer.conv.weight, source.featurizer.conv.weight)
    assert torch.equal(adapter.model.classifier.weight, source.classifier.weight)


def test_pseudo_label_steps_only_on_batches_with_a_confident_prediction():
    source = cnn_erm()
    x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        confidence = source.predict(x).softmax(dim=1).max(dim=1).values
    unsure = PseudoLabel(source, {"beta": float(confidence.max()) + 1e-3})
    unsure.adapt_and_predict(x)
    assert all(torch.equal(a, b) for a, b in zip(unsure.model.parameters(), source.parameters(), strict=True))
    sure = PseudoLabel(source, {"beta": float(confidence.min()) - 1e-3})
    sure.adapt_and_predict(x)
    assert not torch.equal(sure.model.classifier.weight, source.classifier.weight)


def test_method_hparams_defaults_and_refusals():
    assert method_hparams("t3a", None) == {"filter_K": 100}
    assert method_hparams("pseudo_label", {"alpha": 10}) == {"alpha": 10.0, "steps": 1, "beta": 0.9}
    with pytest.raises(UserError, match="has no hparam 'filter_K'"):
        method_hparams("tent", {"filter_K": 5})
    with pytest.raises(UserError, match="steps must be at least 1"):
        method_hparams("shot_im", {"steps": 0})
