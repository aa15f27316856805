"""T3A on a case computed by hand: the supports it keeps, the entropy filter and the
prototype classifier (Iwasawa & Matsuo, NeurIPS 2021; matsuolab/T3A adapt_algorithms.py)."""

from __future__ import annotations

import math

import pytest
import torch

from dgsamp.adaptation.t3a import T3A
from dgsamp.algorithms.mtl import MTL
from dgsamp.errors import UserError
from tests.adaptation.toy_models import HPARAMS, IdentityFeaturizer, linear_erm


def entropy(logits: list[float]) -> float:
    weights = [math.exp(v) for v in logits]
    total = sum(weights)
    return -sum(w / total * math.log(w / total) for w in weights)


# classifier W = I (2 classes, 2 features), bias 0: warm-up supports are e1 (class 0) and
# e2 (class 1), each with logits margin 1. Batch: z1 = (3, 0) -> class 0 with margin 3,
# z2 = (0.5, 3) -> class 1 with margin 2.5: both less uncertain than the warm-up rows.
BATCH = torch.tensor([[3.0, 0.0], [0.5, 3.0]])


def test_filter_k1_keeps_the_least_uncertain_support_of_each_class_and_predicts_with_its_direction():
    assert entropy([3, 0]) < entropy([1, 0]) and entropy([0.5, 3]) < entropy([0, 1])
    adapter = T3A(linear_erm([[1.0, 0.0], [0.0, 1.0]]), {"filter_K": 1})
    logits = adapter.adapt_and_predict(BATCH)
    assert torch.equal(adapter.supports, BATCH)  # class 0's then class 1's best support
    assert torch.equal(adapter.labels, torch.eye(2))
    # prototypes: c0 = z1/|z1| = (1, 0), c1 = z2/|z2| = (0.5, 3)/sqrt(9.25)
    norm = math.sqrt(9.25)
    expected = [[3.0, 3.0 * 0.5 / norm], [0.5, (0.25 + 9.0) / norm]]
    assert torch.allclose(logits, torch.tensor(expected), atol=1e-6)


def test_filter_k_minus_one_keeps_every_support_and_averages_normalised_directions():
    adapter = T3A(linear_erm([[1.0, 0.0], [0.0, 1.0]]), {"filter_K": -1})
    logits = adapter.adapt_and_predict(BATCH)
    assert len(adapter.supports) == 4  # e1, e2 and both batch features
    # class 0: e1 + z1/|z1| = (2, 0) -> c0 = (1, 0); class 1: e2 + z2/|z2| -> normalised
    norm = math.sqrt(9.25)
    s1 = (0.5 / norm, 1.0 + 3.0 / norm)
    length = math.hypot(*s1)
    c1 = (s1[0] / length, s1[1] / length)
    expected = [[3.0, 3.0 * c1[0]], [0.5, 0.5 * c1[0] + 3.0 * c1[1]]]
    assert torch.allclose(logits, torch.tensor(expected), atol=1e-6)


def test_supports_filtered_away_stay_away_on_the_next_batch():
    adapter = T3A(linear_erm([[1.0, 0.0], [0.0, 1.0]]), {"filter_K": 1})
    adapter.adapt_and_predict(BATCH)
    # (1.5, 0) -> class 0 with margin 1.5: worse than z1 (margin 3), so z1 stays the support
    adapter.adapt_and_predict(torch.tensor([[1.5, 0.0]]))
    assert torch.equal(adapter.supports, BATCH)


def test_the_warm_up_supports_are_the_classifier_rows_labelled_by_the_classifier():
    # rows r0 = (1, 0), r1 = (2, 1), bias 0: g(r0) = (1, 2) and g(r1) = (2, 5), both class 1
    adapter = T3A(linear_erm([[1.0, 0.0], [2.0, 1.0]]), {"filter_K": 100})
    assert torch.equal(adapter.supports, torch.tensor([[1.0, 0.0], [2.0, 1.0]]))
    assert torch.equal(adapter.labels.argmax(dim=1), torch.tensor([1, 1]))
    assert torch.allclose(adapter.entropies, torch.tensor([entropy([1, 2]), entropy([2, 5])]), atol=1e-6)


def test_t3a_refuses_a_nonlinear_classifier_and_a_model_that_predicts_otherwise():
    nonlinear = linear_erm([[1.0, 0.0], [0.0, 1.0]])
    nonlinear.classifier = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(UserError, match="linear classifier"):
        T3A.check_model(nonlinear)
    mtl = MTL(IdentityFeaturizer(2), 2, 2, {**HPARAMS, "mtl_ema": 0.99})
    with pytest.raises(UserError, match="cannot be wrapped"):
        T3A.check_model(mtl)
