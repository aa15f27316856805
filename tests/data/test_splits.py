"""DomainBed in/out splits on the embedded PACS mini (175 images per domain)."""

from __future__ import annotations

import numpy as np
import pytest

from dgsamp.data.splits import make_splits, split_indices
from dgsamp.datasets.images import PACSMini
from dgsamp.errors import UserError
from dgsamp.utils.seeding import seed_hash


@pytest.fixture(scope="module")
def pacs_mini():
    return PACSMini()


def test_splits_are_disjoint_complete_and_80_20(pacs_mini):
    splits = make_splits(pacs_mini, test_envs=[0], holdout_fraction=0.2, trial_seed=0)
    assert splits.test_envs == (0,) and splits.train_envs == (1, 2, 3)
    for in_part, out_part in zip(splits.in_indices, splits.out_indices):
        assert len(out_part) == int(175 * 0.2) == 35 and len(in_part) == 140
        assert not set(in_part) & set(out_part)
        assert sorted([*in_part, *out_part]) == list(range(175))
    assert splits.unlabeled == {}


def test_splits_follow_domainbeds_seeded_shuffle(pacs_mini):
    splits = make_splits(pacs_mini, test_envs=[2], holdout_fraction=0.2, trial_seed=3)
    for env_index in range(4):
        keys = list(range(175))
        np.random.RandomState(seed_hash(3, env_index)).shuffle(keys)
        assert splits.out_indices[env_index].tolist() == keys[:35]
        assert splits.in_indices[env_index].tolist() == keys[35:]


def test_splits_are_reproducible_and_depend_on_trial_seed(pacs_mini):
    first = make_splits(pacs_mini, [1], 0.2, trial_seed=0)
    again = make_splits(pacs_mini, [3], 0.2, trial_seed=0)  # test envs do not change DG splits
    other = make_splits(pacs_mini, [1], 0.2, trial_seed=1)
    for env_index in range(4):
        assert np.array_equal(first.out_indices[env_index], again.out_indices[env_index])
        assert not np.array_equal(first.out_indices[env_index], other.out_indices[env_index])
    # Different domains get different shuffles from the same trial seed.
    assert not np.array_equal(first.out_indices[0], first.out_indices[1])


def test_domain_adaptation_uses_the_test_in_split_by_default(pacs_mini):
    splits = make_splits(pacs_mini, [1, 3], 0.2, 0, task="domain_adaptation")
    assert sorted(splits.unlabeled) == [1, 3]
    for env_index in (1, 3):
        assert np.array_equal(splits.unlabeled[env_index], splits.in_indices[env_index])


def test_domain_adaptation_with_uda_holdout_carves_from_in(pacs_mini):
    plain = make_splits(pacs_mini, [0], 0.2, 0, task="domain_adaptation")
    carved = make_splits(pacs_mini, [0], 0.2, 0, task="domain_adaptation", uda_holdout_fraction=0.5)
    unlabeled, rest = carved.unlabeled[0], carved.in_indices[0]
    assert len(unlabeled) == 70 and len(rest) == 70
    assert not set(unlabeled) & set(rest)
    assert sorted([*unlabeled, *rest]) == sorted(plain.in_indices[0])
    assert np.array_equal(carved.out_indices[0], plain.out_indices[0])
    assert np.array_equal(carved.in_indices[1], plain.in_indices[1])  # train domains untouched


def test_split_indices_maps_positions_of_an_index_list():
    indices = np.arange(100, 110)
    in_part, out_part = split_indices(indices, 3, seed=7)
    positions = list(range(10))
    np.random.RandomState(7).shuffle(positions)
    assert out_part.tolist() == [100 + p for p in positions[:3]]
    assert in_part.tolist() == [100 + p for p in positions[3:]]


@pytest.mark.parametrize(
    ("test_envs", "task", "holdout", "message"),
    [
        ([4], "domain_generalization", 0.2, r"test env 4 is out of range.*0\.\.3"),
        ([-1], "domain_generalization", 0.2, r"test env -1 is out of range"),
        ([0, 1, 2, 3], "domain_generalization", 0.2, r"all 4 domains are test envs"),
        ([1, 1], "domain_generalization", 0.2, r"duplicates"),
        ([], "domain_adaptation", 0.2, r"needs at least one test env"),
        ([0], "adaptation", 0.2, r"unknown task 'adaptation'"),
        ([0], "domain_generalization", 1.0, r"holdout_fraction must be in \[0, 1\)"),
    ],
)
def test_invalid_arguments_are_user_errors(pacs_mini, test_envs, task, holdout, message):
    with pytest.raises(UserError, match=message):
        make_splits(pacs_mini, test_envs, holdout, 0, task=task)
