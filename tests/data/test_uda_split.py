"""DomainBed's uda split (``unlabeled_split="uda"``, the domainbed presets) against dgsamp's
transductive one (``"test_in"``), on the embedded PACS mini (175 images per domain).

DomainBed's train.py: ``out, in_ = split_dataset(env, int(len(env) * holdout), seed_hash(trial, i))``
then, for a test domain, ``uda, in_ = split_dataset(in_, int(len(in_) * uda_fraction), same seed)``
in both tasks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgsamp.data.splits import make_splits
from dgsamp.data.training_data import load_training_data
from dgsamp.datasets.images import PACSMini
from dgsamp.errors import UserError
from dgsamp.utils.seeding import seed_hash


@pytest.fixture(scope="module")
def pacs_mini():
    return PACSMini()


def test_uda_split_is_carved_from_the_test_in_split_in_both_tasks(pacs_mini):
    for task in ("domain_generalization", "domain_adaptation"):
        splits = make_splits(pacs_mini, [1], 0.2, 4, task, uda_holdout_fraction=0.25, unlabeled_split="uda")
        keys = list(range(175))
        np.random.RandomState(seed_hash(4, 1)).shuffle(keys)
        in_part = keys[35:]  # 140 items
        positions = list(range(140))
        np.random.RandomState(seed_hash(4, 1)).shuffle(positions)
        assert splits.unlabeled[1].tolist() == [in_part[p] for p in positions[:35]]
        assert splits.in_indices[1].tolist() == [in_part[p] for p in positions[35:]]
        assert list(splits.unlabeled) == [1] and len(splits.in_indices[0]) == 140


def test_transductive_da_and_the_uda_rules(pacs_mini):
    dg = make_splits(pacs_mini, [1], 0.2, 0, "domain_generalization", 0.25, "test_in")
    assert dg.unlabeled == {}  # dgsamp's scheme carves nothing in DG
    da = make_splits(pacs_mini, [1], 0.2, 0, "domain_adaptation", 0.0, "test_in")
    assert da.unlabeled[1].tolist() == da.in_indices[1].tolist()
    with pytest.raises(UserError, match="needs uda_holdout_fraction > 0"):
        make_splits(pacs_mini, [1], 0.2, 0, "domain_adaptation", 0.0, "uda")


def test_the_uda_split_is_evaluated_and_feeds_domain_adaptation(pacs_mini):
    def load(task):
        return load_training_data(pacs_mini, [0], 0.2, 0, task, 16, torch.device("cpu"), 2,
                                  uda_holdout_fraction=0.5, unlabeled_split="uda")

    dg, da = load("domain_generalization"), load("domain_adaptation")
    for data in (dg, da):
        assert len(data.eval_splits["env0_uda"]) == 70 and len(data.eval_splits["env0_in"]) == 70
        assert "env1_uda" not in data.eval_splits
    assert dg.unlabeled == [] and len(da.unlabeled) == 1
    assert torch.equal(da.unlabeled[0].y, da.eval_splits["env0_uda"].y)
