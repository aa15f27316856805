"""The hparams registry: defaults, DomainBed's seeded draws, one RNG per name, range checks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dgsamp.errors import UserError
from dgsamp.hparams import HParam, resolve_hparams
from dgsamp.registry import ALGORITHMS


def test_seed_zero_gives_defaults_and_small_images_their_own():
    dann = ALGORITHMS.get("DANN")
    images = resolve_hparams(dann, small_images=False, hparams_seed=0)
    mnist = resolve_hparams(dann, small_images=True, hparams_seed=0)
    assert images["lr"] == 5e-5 and images["batch_size"] == 32
    assert mnist["lr"] == 1e-3 and mnist["batch_size"] == 64
    assert images["dann_lambda"] == dann.HPARAMS["dann_lambda"].default


def test_random_draws_are_reproducible_in_range_and_independent_per_name():
    erm = ALGORITHMS.get("ERM")
    first = resolve_hparams(erm, False, hparams_seed=7)
    assert first == resolve_hparams(erm, False, hparams_seed=7)
    assert first != resolve_hparams(erm, False, hparams_seed=8)
    assert 10**-5 <= first["lr"] <= 10**-3.5 and isinstance(first["batch_size"], int)

    class ERMWithExtra(erm):
        HPARAMS = {"extra_knob": HParam(1.0, lambda r: r.uniform(0, 100))}

    extended = resolve_hparams(ERMWithExtra, False, hparams_seed=7)
    assert {k: v for k, v in extended.items() if k != "extra_knob"} == first
    extended_trial = resolve_hparams(ERMWithExtra, False, hparams_seed=7, trial_seed=2)
    trial = resolve_hparams(erm, False, hparams_seed=7, trial_seed=2)
    assert {k: v for k, v in extended_trial.items() if k != "extra_knob"} == trial


def md5_seed(*values: object) -> int:
    """DomainBed's seed hash, written out: MD5 of str(tuple) as an integer, mod 2**31."""
    return int(hashlib.md5(str(values).encode("utf-8")).hexdigest(), 16) % 2**31


def test_draws_follow_domainbeds_seeding_with_the_trial_seed():
    """DomainBed: base = seed_hash(hparams_seed, trial_seed); hparam name ~ RandomState(
    seed_hash(base, name)). The trial seed changes the draw but never the defaults."""
    dann = ALGORITHMS.get("DANN")
    drawn = resolve_hparams(dann, False, hparams_seed=7, trial_seed=3)
    base = md5_seed(7, 3)
    assert drawn["lr"] == 10 ** np.random.RandomState(md5_seed(base, "lr")).uniform(-5, -3.5)
    assert drawn["batch_size"] == int(2 ** np.random.RandomState(md5_seed(base, "batch_size")).uniform(3, 5.5))
    expected_lambda = dann.HPARAMS["dann_lambda"].sample(np.random.RandomState(md5_seed(base, "dann_lambda")))
    assert drawn["dann_lambda"] == expected_lambda
    assert drawn != resolve_hparams(dann, False, hparams_seed=7, trial_seed=4)
    assert resolve_hparams(dann, False, hparams_seed=7) == resolve_hparams(dann, False, 7, None, 0)
    defaults = resolve_hparams(dann, False, hparams_seed=0)
    assert resolve_hparams(dann, False, hparams_seed=0, trial_seed=5) == defaults
    assert HParam(1.0, lambda r: r.uniform()).value(0, "x", False, trial_seed=9) == 1.0


def test_overrides_are_typed_and_unknown_names_refused():
    coral = ALGORITHMS.get("CORAL")
    hparams = resolve_hparams(coral, False, 0, {"lr": "0.01", "batch_size": 16.0, "data_augmentation": "false"})
    assert hparams["lr"] == 0.01 and hparams["batch_size"] == 16 and hparams["data_augmentation"] is False
    with pytest.raises(UserError, match="unknown hparam 'dann_lambda'"):
        resolve_hparams(coral, False, 0, {"dann_lambda": 1.0})
    with pytest.raises(UserError, match="expects int"):
        resolve_hparams(coral, False, 0, {"batch_size": 2.5})
    with pytest.raises(UserError, match="expects float"):
        resolve_hparams(coral, False, 0, {"lr": "nan"})


def test_learning_rates_positive_and_weight_decays_non_negative():
    dann = ALGORITHMS.get("DANN")
    with pytest.raises(UserError, match=r"^hparam 'weight_decay' must be >= 0, got -1\.0$"):
        resolve_hparams(dann, False, 0, {"weight_decay": -1})
    with pytest.raises(UserError, match="hparam 'weight_decay_d' must be >= 0"):
        resolve_hparams(dann, False, 0, {"weight_decay_d": "-1e-4"})
    with pytest.raises(UserError, match="hparam 'lr_d' must be finite and > 0"):
        resolve_hparams(dann, False, 0, {"lr_d": 0})
    with pytest.raises(UserError, match="lr must be positive"):
        resolve_hparams(dann, False, 0, {"lr": -1})
    assert resolve_hparams(dann, False, 0, {"weight_decay_g": 0, "lr_g": 1e-6})["weight_decay_g"] == 0.0

    class BadPlugin(ALGORITHMS.get("ERM")):
        HPARAMS = {
            "inner_lr": HParam(float("inf"), lambda r: 0.1),
            "head_weight_decay": HParam(1e-4, lambda r: -r.uniform(1, 2)),
        }

    with pytest.raises(UserError, match="hparam 'inner_lr' must be finite and > 0"):
        resolve_hparams(BadPlugin, False, 0)  # a plugin's bad default
    with pytest.raises(UserError, match="hparam 'head_weight_decay' must be >= 0"):
        resolve_hparams(BadPlugin, False, 3, {"inner_lr": 0.1})  # a plugin's bad draw
    # names that merely contain the letters but hold no number are not checked
    assert resolve_hparams(dann, False, 0)["lr_schedule"] == "constant"
