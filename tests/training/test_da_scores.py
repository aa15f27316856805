"""Label-free validation scores at every evaluation of a domain-adaptation run.

The wiring (which examples, which model outputs, which subsets) is checked on a tiny
linear model against the formulas written out here; the score functions themselves are
tested in tests/scores. Then one real tiny DANN run and one DG run through the trainer.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F

from dgsamp.data.training_data import DomainTensors
from dgsamp.scores import deep_embedded_validation, soft_neighborhood_density
from dgsamp.tracking import schema
from dgsamp.training.adaptation_scores import adaptation_scores, subsample
from tests.helpers import REPO, read_results, train_in_process

SCORE_KEYS = ("source_val_acc", "target_entropy", "target_im", "target_snd", "target_dev")


class TinyModel(torch.nn.Module):
    """featurizer: R^4 -> R^3, classifier: R^3 -> 2 classes; predict = classifier(featurizer(x))."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.featurizer = torch.nn.Linear(4, 3)
        self.classifier = torch.nn.Linear(3, 2)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.featurizer(x))


def domain(seed: int, n: int) -> DomainTensors:
    generator = torch.Generator().manual_seed(seed)
    return DomainTensors(torch.randn(n, 4, generator=generator), torch.randint(0, 2, (n,), generator=generator))


def test_subsample_keeps_everything_under_the_cap_and_is_seeded():
    domains = [domain(0, 5), domain(1, 7)]
    everything = subsample(domains, 12, torch.Generator().manual_seed(1))
    assert [picks.tolist() for picks in everything] == [list(range(5)), list(range(7))]
    first = subsample(domains, 6, torch.Generator().manual_seed(1))
    again = subsample(domains, 6, torch.Generator().manual_seed(1))
    assert sum(len(picks) for picks in first) == 6
    assert [p.tolist() for p in first] == [p.tolist() for p in again]  # a resumed run draws the same
    for picks, size in zip(first, (5, 7), strict=True):
        assert picks.tolist() == sorted(set(picks.tolist())) and all(0 <= i < size for i in picks.tolist())
    other_seeds = [[p.tolist() for p in subsample(domains, 6, torch.Generator().manual_seed(s))] for s in range(2, 8)]
    assert any(picks != [p.tolist() for p in first] for picks in other_seeds)


def test_scores_read_the_right_sets_and_outputs():
    model = TinyModel()
    train, val, target = [domain(1, 6), domain(2, 5)], [domain(3, 4), domain(4, 3)], [domain(5, 8)]
    accuracies = {"env0_out_acc": 0.5, "env1_out_acc": 0.8}
    scores = adaptation_scores(model, accuracies, train, val, target, (0, 1), lambda x: x, 3, nullcontext(), seed=7)
    assert set(scores) == set(SCORE_KEYS)
    assert scores["source_val_acc"] == pytest.approx((0.5 + 0.8) / 2)
    with torch.no_grad():
        logits = model.predict(target[0].x).double()
        p = logits.softmax(dim=1)
        entropies = -(p * p.log()).sum(dim=1)
        p_bar = p.mean(dim=0)
        assert scores["target_entropy"] == pytest.approx(entropies.mean().item())
        assert scores["target_im"] == pytest.approx((-(p_bar * p_bar.log()).sum() - entropies.mean()).item())
        assert scores["target_snd"] == pytest.approx(soft_neighborhood_density(logits))
        features = [torch.cat([model.featurizer(d.x) for d in ds]) for ds in (train, val, target)]
        val_logits = torch.cat([model.predict(d.x) for d in val])
        losses = F.cross_entropy(val_logits, torch.cat([d.y for d in val]), reduction="none")
        expected_dev = deep_embedded_validation(features[0], features[1], losses, features[2])
    assert scores["target_dev"] == pytest.approx(expected_dev, rel=1e-6)
    assert model.training  # the mode it came in with


def test_capped_target_uses_the_subset_and_one_target_has_no_snd():
    model = TinyModel()
    train, val = [domain(1, 6)], [domain(3, 4)]
    target = [domain(5, 10)]
    capped = adaptation_scores(model, {"env0_out_acc": 1.0}, train, val, target, (0,), lambda x: x, 4,
                               nullcontext(), seed=3, cap=4)
    picks = subsample(target, 4, _generator_after(3, [train, val], 4))
    with torch.no_grad():
        p = model.predict(target[0].x[picks[0]]).double().softmax(dim=1)
    assert capped["target_entropy"] == pytest.approx((-(p * p.log()).sum(dim=1)).mean().item())
    single = adaptation_scores(model, {"env0_out_acc": 1.0}, train, val, [domain(5, 1)], (0,), lambda x: x, 4,
                               nullcontext(), seed=3)
    assert single["target_snd"] is None and math.isfinite(single["target_entropy"])


def _generator_after(seed: int, earlier: list, cap: int) -> torch.Generator:
    """The generator as the target's draw finds it: source train's and source val's draws first."""
    generator = torch.Generator().manual_seed(seed)
    for domains in earlier:
        subsample(domains, cap, generator)
    return generator


def test_a_da_run_records_finite_scores_and_a_dg_run_none(tmp_path):
    da, dg = tmp_path / "da", tmp_path / "dg"
    assert train_in_process(da, "--task", "domain_adaptation", "--test_envs", "3", "--algorithm", "DANN") == 0
    records = read_results(da)
    assert len(records) == 2
    for record in records:
        assert all(isinstance(record[key], float) and math.isfinite(record[key]) for key in SCORE_KEYS)
        mean_out = sum(record[f"env{env}_out_acc"] for env in (0, 1, 2)) / 3  # sources: every domain but 3
        assert record["source_val_acc"] == pytest.approx(mean_out)
        assert 0.0 <= record["target_entropy"] <= math.log(7)  # PACS: 7 classes
        assert 0.0 <= record["target_im"] <= math.log(7)
    assert train_in_process(dg, "--test_envs", "3", "--algorithm", "DANN", "--epochs", "1") == 0
    assert all(not set(SCORE_KEYS) & set(record) for record in read_results(dg))
    assert set(SCORE_KEYS) == set(schema.ADAPTATION_SCORE_KEYS)


def test_results_format_documents_every_score_key():
    docs = (REPO / "docs" / "results-format.md").read_text()
    assert all(f"| `{key}` |" in docs for key in schema.ADAPTATION_SCORE_KEYS)
