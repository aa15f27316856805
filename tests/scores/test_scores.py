"""dgsamp.scores: every expected value is derived by hand here (or by numpy where named)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dgsamp.scores import (
    SCORES,
    deep_embedded_validation,
    dev_risk,
    domain_density_ratio,
    information_maximization,
    mean_entropy,
    mean_per_class_accuracy,
    overall_accuracy,
    soft_neighborhood_density,
)


def one_hot_logits(predictions: list[int], num_classes: int, scale: float = 50.0) -> torch.Tensor:
    return scale * torch.nn.functional.one_hot(torch.tensor(predictions), num_classes).float()


# ---------------------------------------------------------------- accuracy


def test_overall_and_per_class_accuracy_differ_on_imbalanced_labels():
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    logits = one_hot_logits([0, 0, 0, 0, 0, 1, 1, 0, 1, 2], 4)
    # correct: five of class 0, one of class 1, one of class 2 -> 7 / 10 overall
    assert overall_accuracy(logits, labels) == pytest.approx(0.7)
    # per class: 5/6, 1/2, 1/2; class 3 never occurs and is left out -> (5/6 + 1) / 3
    assert mean_per_class_accuracy(logits, labels, num_classes=4) == pytest.approx((5 / 6 + 1 / 2 + 1 / 2) / 3)


def test_a_model_predicting_the_majority_class_is_exposed_by_per_class_accuracy():
    labels = torch.tensor([0] * 8 + [1, 2])
    logits = one_hot_logits([0] * 10, 3)
    assert overall_accuracy(logits, labels) == pytest.approx(0.8)
    assert mean_per_class_accuracy(logits, labels, 3) == pytest.approx(1 / 3)


def test_accuracy_refuses_bad_shapes_and_labels():
    with pytest.raises(ValueError):
        overall_accuracy(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        mean_per_class_accuracy(torch.zeros(2, 2), torch.tensor([0, 2]), num_classes=2)


# ---------------------------------------------------------------- entropy and IM


@pytest.mark.parametrize("num_classes", [2, 7])
def test_uniform_predictions_have_entropy_log_k_and_no_information(num_classes):
    logits = torch.full((5, num_classes), 3.0)
    assert mean_entropy(logits) == pytest.approx(math.log(num_classes), abs=1e-12)
    assert information_maximization(logits) == pytest.approx(0.0, abs=1e-12)


def test_confident_balanced_predictions_reach_im_log_k_and_a_collapse_scores_zero():
    balanced = one_hot_logits([0, 1, 2, 3, 0, 1, 2, 3], 4)
    assert mean_entropy(balanced) == pytest.approx(0.0, abs=1e-15)
    assert information_maximization(balanced) == pytest.approx(math.log(4), abs=1e-15)
    collapsed = one_hot_logits([2] * 8, 4)
    assert mean_entropy(collapsed) == pytest.approx(0.0, abs=1e-15)  # entropy cannot tell
    assert information_maximization(collapsed) == pytest.approx(0.0, abs=1e-15)


def test_entropy_and_im_on_a_two_row_hand_case():
    # p1 = (1/2, 1/4, 1/4), p2 = (1/4, 1/2, 1/4): H = 1/2 ln 2 + 1/2 ln 4 = 3/2 ln 2 for both
    # p_bar = (3/8, 3/8, 1/4): H(p_bar) = -2 (3/8) ln(3/8) - (1/4) ln(1/4)
    probabilities = torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]], dtype=torch.float64)
    logits = probabilities.log() + torch.tensor([[1.0], [-4.0]], dtype=torch.float64)  # shifts are free
    assert mean_entropy(logits) == pytest.approx(1.5 * math.log(2), rel=1e-14)
    h_mean = -2 * 0.375 * math.log(0.375) - 0.25 * math.log(0.25)
    assert information_maximization(logits) == pytest.approx(h_mean - 1.5 * math.log(2), rel=1e-12)


def test_a_class_with_logit_minus_infinity_counts_as_probability_zero():
    logits = torch.tensor([[0.0, float("-inf")], [0.0, 0.0]])
    assert mean_entropy(logits) == pytest.approx(math.log(2) / 2, rel=1e-14)


# ---------------------------------------------------------------- SND


def binary_entropy(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


@pytest.mark.parametrize("temperature", [1.0, 0.05])
def test_snd_on_three_points_in_two_dimensions(temperature):
    # rows used as given: x1 = (1, 0), x2 = (0, 1), x3 = (2, 2)
    # cosines: x1.x2 = 0, x1.x3 = x2.x3 = 1/sqrt(2) = c; the diagonal is removed.
    # rows 1 and 2: two neighbours at similarities 0 and c / T -> binary entropy of
    #   1 / (1 + exp(c / T)); row 3: two neighbours at c / T each -> ln 2.
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    c = 1 / math.sqrt(2)
    row_1 = binary_entropy(1 / (1 + math.exp(c / temperature)))
    expected = (2 * row_1 + math.log(2)) / 3
    got = soft_neighborhood_density(features, temperature=temperature, apply_softmax=False)
    assert got == pytest.approx(expected, rel=1e-12)


def test_snd_applies_softmax_to_logits_by_default():
    # softmax rows (1/2, 1/2), (4/5, 1/5), (1/5, 4/5) from logits log p.
    # cos(p1, p2) = cos(p1, p3) = (1/2) / (sqrt(1/2) sqrt(17/25)) = a; cos(p2, p3) = (8/25) / (17/25) = 8/17
    logits = torch.tensor([[0.5, 0.5], [0.8, 0.2], [0.2, 0.8]], dtype=torch.float64).log()
    tau = 0.05
    a = 0.5 / (math.sqrt(0.5) * math.sqrt(17 / 25))
    b = 8 / 17
    row_1 = math.log(2)  # two neighbours at the same similarity
    row_2 = binary_entropy(1 / (1 + math.exp((b - a) / tau)))  # neighbours at a / tau and b / tau
    expected = (row_1 + 2 * row_2) / 3
    assert soft_neighborhood_density(logits) == pytest.approx(expected, rel=1e-10)


def test_snd_of_identical_rows_is_log_of_the_neighbour_count():
    assert soft_neighborhood_density(torch.ones(5, 3)) == pytest.approx(math.log(4), rel=1e-14)


def test_snd_in_blocks_equals_snd_at_once():
    outputs = torch.randn(9, 4, generator=torch.Generator().manual_seed(0))
    whole = soft_neighborhood_density(outputs, block_size=100)
    assert soft_neighborhood_density(outputs, block_size=1) == pytest.approx(whole, rel=1e-13)
    assert soft_neighborhood_density(outputs, block_size=4) == pytest.approx(whole, rel=1e-13)


def test_snd_agrees_with_the_authors_recipe():
    # VisionLearningGroup/SND nc_ps/eval.py @ cae5f48 neighbor_density with entropy of
    # base/utils/loss.py @ f1293a4: diagonal set to -1/T, entropy -sum P log(P + 1e-5),
    # rewritten in numpy here. It differs by at most 1e-5 per neighbour.
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(1)).double()
    p = torch.softmax(logits, dim=1).numpy()
    f = p / np.linalg.norm(p, axis=1, keepdims=True)
    s = f @ f.T / 0.05
    np.fill_diagonal(s, -1 / 0.05)
    q = np.exp(s - s.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    authors = float(np.mean(-np.sum(q * np.log(q + 1e-5), axis=1)))
    assert soft_neighborhood_density(logits) == pytest.approx(authors, abs=5 * 1e-5)


def test_snd_needs_two_rows():
    with pytest.raises(ValueError):
        soft_neighborhood_density(torch.zeros(1, 3))


# ---------------------------------------------------------------- DEV


def test_dev_risk_with_a_control_variate_that_matters_matches_numpy():
    rng = np.random.default_rng(0)
    weights = rng.lognormal(0.0, 0.8, size=50)
    losses = 0.2 + 0.5 * weights + rng.uniform(0, 0.1, size=50)  # losses grow with weight
    weighted = weights * losses
    eta = -np.cov(weighted, weights)[0, 1] / np.var(weights, ddof=1)
    expected = weighted.mean() + eta * weights.mean() - eta
    assert abs(expected - weighted.mean()) > 0.05  # the correction is not negligible here
    assert dev_risk(torch.from_numpy(weights), torch.from_numpy(losses)) == pytest.approx(expected, rel=1e-12)


def test_dev_risk_of_constant_weights_is_the_mean_loss():
    losses = torch.tensor([0.1, 0.7, 0.4])
    assert dev_risk(torch.ones(3), losses) == pytest.approx(0.4, rel=1e-7)


def test_identical_domains_give_weights_one_and_dev_the_mean_loss():
    generator = torch.Generator().manual_seed(0)
    source = torch.randn(40, 3, generator=generator)
    validation = torch.randn(10, 3, generator=generator)
    losses = torch.rand(10, generator=generator)
    weights = domain_density_ratio(source, source.clone(), validation)
    torch.testing.assert_close(weights, torch.ones(10, dtype=torch.float64), atol=1e-9, rtol=0)
    dev = deep_embedded_validation(source, validation, losses, source.clone())
    assert dev == pytest.approx(losses.double().mean().item(), abs=1e-8)


def gaussian_quantiles(n: int, mean: float) -> torch.Tensor:
    """n evenly spread quantiles of N(mean, 1), as a column [n, 1]."""
    levels = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return (mean + torch.special.ndtri(levels)).unsqueeze(1)


def test_density_ratio_of_two_gaussians_is_recovered():
    # source N(0, 1), target N(1, 1): p_t(x) / p_s(x) = exp(x - 1/2), whatever N_s / N_t
    source, target = gaussian_quantiles(2000, 0.0), gaussian_quantiles(1000, 1.0)
    points = torch.tensor([[-1.0], [0.0], [0.5], [1.0], [2.0]], dtype=torch.float64)
    weights = domain_density_ratio(source, target, points, l2=1e-8)
    torch.testing.assert_close(weights, torch.exp(points[:, 0] - 0.5), rtol=0.05, atol=0)


def test_dev_estimates_the_target_risk_under_covariate_shift():
    # loss 1 where x > 1/2, else 0: the target risk is P(N(1, 1) > 1/2) = Phi(1/2)
    source, target = gaussian_quantiles(2000, 0.0), gaussian_quantiles(2000, 1.0)
    validation = gaussian_quantiles(500, 0.0)
    losses = (validation[:, 0] > 0.5).double()
    target_risk = 0.5 * (1 + math.erf(0.5 / math.sqrt(2)))
    assert losses.mean().item() == pytest.approx(0.3085, abs=2e-3)  # the source risk, far off
    dev = deep_embedded_validation(source, validation, losses, target, l2=1e-8)
    assert dev == pytest.approx(target_risk, abs=0.02)


# ---------------------------------------------------------------- the table


def test_scores_table_directions_and_inputs():
    assert {name: spec.direction for name, spec in SCORES.items()} == {
        "entropy": "min", "im": "max", "snd": "max", "dev": "min",
    }
    assert SCORES["im"].better(0.9, 0.1) and SCORES["entropy"].better(0.1, 0.9)
    assert SCORES["dev"].inputs == ("features", "source_val")
    logits = one_hot_logits([0, 1, 2, 0], 3)
    for name in ("entropy", "im", "snd"):
        assert SCORES[name].inputs == ("target_logits",)
        assert math.isfinite(SCORES[name].function(logits))
