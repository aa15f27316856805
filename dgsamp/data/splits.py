"""DomainBed's per-domain in/out splits, and the unlabeled target data for domain adaptation.

For domain ``i`` with ``n`` items: shuffle ``[0, n)`` with ``np.random.RandomState(seed_hash(
trial_seed, i))``; the first ``int(n * holdout_fraction)`` shuffled indices are the *out* split
(validation, used by model selection) and the rest the *in* split (training for train domains,
the reported score for test domains). The same trial_seed always gives the same splits.

Unlabeled target data, two schemes (``unlabeled_split``, set by the protocol preset):

- ``"uda"`` (DomainBed, train.py since b953488): in *both* tasks, the first
  ``int(len(in) * uda_holdout_fraction)`` indices of each test domain's in split, reshuffled
  with the same seed, become its *uda* split and leave the in split. Domain adaptation
  draws its unlabeled batches from it (it needs ``uda_holdout_fraction > 0``).
- ``"test_in"`` (dgsamp's): only in domain adaptation; with ``uda_holdout_fraction == 0``
  the unlabeled batches come from the test domain's whole in split (transductive, as tllib
  trains), with ``> 0`` from a uda split carved as above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dgsamp.errors import UserError
from dgsamp.utils.seeding import seed_hash

TASKS = ("domain_generalization", "domain_adaptation")
UNLABELED_SPLITS = ("uda", "test_in")


def split_indices(indices: Sequence[int] | np.ndarray, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """DomainBed's ``split_dataset`` on an index list: returns ``(in_indices, out_indices)``.

    ``indices`` is shuffled position-wise with ``RandomState(seed)``; out = the first
    ``n_out`` shuffled entries, in = the rest (both int64 arrays).
    """
    indices = np.asarray(indices, dtype=np.int64)
    positions = list(range(len(indices)))
    np.random.RandomState(seed).shuffle(positions)
    order = np.asarray(positions, dtype=np.int64)
    return indices[order[n_out:]], indices[order[:n_out]]


@dataclass(frozen=True)
class Splits:
    """Per-domain index arrays into ``dataset[i]``; ``unlabeled[i]`` only for DA test domains."""

    in_indices: tuple[np.ndarray, ...]
    out_indices: tuple[np.ndarray, ...]
    test_envs: tuple[int, ...]
    task: str
    unlabeled: dict[int, np.ndarray] = field(default_factory=dict)  # uda split or DA's unlabeled set
    source_envs: tuple[int, ...] | None = None  # DA's --source; None: every domain not in test_envs

    @property
    def num_domains(self) -> int:
        return len(self.in_indices)

    @property
    def train_envs(self) -> tuple[int, ...]:
        """The labelled training domains: ``--source``, else every domain but the test ones
        (a domain in neither ``--source`` nor ``--target`` is only evaluated)."""
        if self.source_envs is not None:
            return tuple(sorted(self.source_envs))
        return tuple(i for i in range(self.num_domains) if i not in self.test_envs)


def validate_test_envs(test_envs: Sequence[int], num_domains: int, task: str) -> tuple[int, ...]:
    """Return ``test_envs`` as a sorted tuple, or raise a UserError saying what is wrong."""
    if task not in TASKS:
        raise UserError(f"unknown task '{task}'; choose one of: {', '.join(TASKS)}")
    envs = tuple(int(e) for e in test_envs)
    valid = f"0..{num_domains - 1}"
    for env in envs:
        if not 0 <= env < num_domains:
            raise UserError(f"test env {env} is out of range: this dataset has domains {valid}")
    if len(set(envs)) != len(envs):
        raise UserError(f"test envs contain duplicates: {list(envs)}; list each domain once")
    if len(envs) >= num_domains:
        raise UserError(
            f"all {num_domains} domains are test envs ({list(envs)}); leave at least one to train on"
        )
    if task == "domain_adaptation" and not envs:
        raise UserError("domain_adaptation needs at least one test env (the unlabeled target domain)")
    return tuple(sorted(envs))


def make_splits(
    dataset,
    test_envs: Sequence[int],
    holdout_fraction: float = 0.2,
    trial_seed: int = 0,
    task: str = "domain_generalization",
    uda_holdout_fraction: float = 0.0,
    unlabeled_split: str = "test_in",
    source_envs: Sequence[int] | None = None,
) -> Splits:
    """In/out (and uda or DA unlabeled) indices for every domain of ``dataset`` (a sequence of
    domains); ``unlabeled_split``: the scheme of the module docstring."""
    num_domains = len(dataset)
    envs = validate_test_envs(test_envs, num_domains, task)
    if not 0.0 <= holdout_fraction < 1.0:
        raise UserError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    if not 0.0 <= uda_holdout_fraction < 1.0:
        raise UserError(f"uda_holdout_fraction must be in [0, 1), got {uda_holdout_fraction}")
    if unlabeled_split not in UNLABELED_SPLITS:
        raise ValueError(f"unlabeled_split must be one of {UNLABELED_SPLITS}, got {unlabeled_split!r}")
    if unlabeled_split == "uda" and task == "domain_adaptation" and uda_holdout_fraction == 0:
        raise UserError("domain adaptation with DomainBed's uda split needs uda_holdout_fraction > 0")
    in_splits, out_splits, unlabeled = [], [], {}
    for env_index in range(num_domains):
        n = len(dataset[env_index])
        seed = seed_hash(trial_seed, env_index)
        in_part, out_part = split_indices(np.arange(n), int(n * holdout_fraction), seed)
        carve_uda = unlabeled_split == "uda" and uda_holdout_fraction > 0
        if env_index in envs and (task == "domain_adaptation" or carve_uda):
            if uda_holdout_fraction > 0:
                in_part, unlabeled_part = split_indices(
                    in_part, int(len(in_part) * uda_holdout_fraction), seed
                )
            else:
                unlabeled_part = in_part.copy()
            unlabeled[env_index] = unlabeled_part
        in_splits.append(in_part)
        out_splits.append(out_part)
    source = None if source_envs is None else tuple(int(e) for e in source_envs)
    return Splits(tuple(in_splits), tuple(out_splits), envs, task, unlabeled, source)
