"""The hparams registry: defaults, DomainBed's seeded draws, one RNG per name, range checks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dgsamp.errors import UserError
from dgsamp.hparams import COMMON_HPARAMS, HParam, check_hparams, hparam_specs, resolve_hparams
from dgsamp.registry import ALGORITHMS


def test_seed_zero_gives_defaults_and_small_images_their_own():
    dann = ALGORITHMS.get("DANN")
    images = resolve_hparams(dann, small_images=False, hparams_seed=0)
    mnist = resolve_hparams(dann, small_images=True, hparams_seed=0)
    assert images["lr"] == 5e-5 and images["batch_size"] == 32
    assert mnist["lr"] == 1e-3 and mnist["batch_size"] == 64
    assert images["lambda"] == dann.HPARAMS["lambda"].default


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
    expected_lambda = dann.HPARAMS["lambda"].sample(np.random.RandomState(md5_seed(base, "lambda")))
    assert drawn["lambda"] == expected_lambda
    assert drawn != resolve_hparams(dann, False, hparams_seed=7, trial_seed=4)
    assert resolve_hparams(dann, False, hparams_seed=7) == resolve_hparams(dann, False, 7, None, 0)
    defaults = resolve_hparams(dann, False, hparams_seed=0)
    assert resolve_hparams(dann, False, hparams_seed=0, trial_seed=5) == defaults
    assert HParam(1.0, lambda r: r.uniform()).value(0, "x", False, trial_seed=9) == 1.0


def test_overrides_are_typed_and_unknown_names_refused():
    coral = ALGORITHMS.get("CORAL")
    hparams = resolve_hparams(coral, False, 0, {"lr": "0.01", "batch_size": 16.0, "data_augmentation": "false"})
    assert hparams["lr"] == 0.01 and hparams["batch_size"] == 16 and hparams["data_augmentation"] is False
    with pytest.raises(UserError, match="unknown hparam 'lambda'"):
        resolve_hparams(coral, False, 0, {"lambda": 1.0})
    with pytest.raises(UserError, match="expects int"):
        resolve_hparams(coral, False, 0, {"batch_size": 2.5})
    with pytest.raises(UserError, match="expects float"):
        resolve_hparams(coral, False, 0, {"lr": "nan"})


def test_learning_rates_positive_and_weight_decays_non_negative():
    dann = ALGORITHMS.get("DANN")
    with pytest.raises(UserError, match=r"^weight_decay must be at least 0, got -1\.0$"):
        resolve_hparams(dann, False, 0, {"weight_decay": -1})
    with pytest.raises(UserError, match="weight_decay_d must be at least 0"):
        resolve_hparams(dann, False, 0, {"weight_decay_d": "-1e-4"})
    with pytest.raises(UserError, match=r"^lr_d must be positive, got 0\.0$"):
        resolve_hparams(dann, False, 0, {"lr_d": 0})
    with pytest.raises(UserError, match=r"^lr must be positive, got -1\.0$"):
        resolve_hparams(dann, False, 0, {"lr": -1})
    assert resolve_hparams(dann, False, 0, {"weight_decay_g": 0, "lr_g": 1e-6})["weight_decay_g"] == 0.0


def test_a_plugins_declared_ranges_check_its_defaults_and_draws():
    class BadPlugin(ALGORITHMS.get("ERM")):
        HPARAMS = {
            "inner_lr": HParam(float("inf"), lambda r: 0.1, minimum=0, exclusive_minimum=True),
            "head_weight_decay": HParam(1e-4, lambda r: -r.uniform(1, 2), minimum=0),
            "undeclared_lr": HParam(-1.0, lambda r: -1.0),  # no range: no check, whatever the name
        }

    with pytest.raises(UserError, match=r"^inner_lr must be finite, got inf$"):
        resolve_hparams(BadPlugin, False, 0)  # a plugin's bad default
    with pytest.raises(UserError, match=r"^head_weight_decay must be at least 0, got -1"):
        resolve_hparams(BadPlugin, False, 3, {"inner_lr": 0.1})  # a plugin's bad draw
    assert resolve_hparams(BadPlugin, False, 0, {"inner_lr": 0.1})["undeclared_lr"] == -1.0


ALGORITHM_SPECS = {name: hparam_specs(ALGORITHMS.get(name)) for name in ALGORITHMS.names()}


def declared_range_holds(spec: HParam, value) -> bool:
    """``value`` against the spec's declared choices / bounds, read here from the spec's
    fields (not through ``HParam.check``, the code under test)."""
    if spec.choices is not None:
        return value in spec.choices
    if isinstance(value, float) and not np.isfinite(value):
        return False
    if spec.minimum is not None and not (value > spec.minimum if spec.exclusive_minimum else value >= spec.minimum):
        return False
    return spec.maximum is None or (value < spec.maximum if spec.exclusive_maximum else value <= spec.maximum)


@pytest.mark.parametrize("name", sorted(ALGORITHM_SPECS))
def test_every_default_and_draw_lies_in_its_declared_range(name):
    """Seed 0 (the defaults) and 19 seeded draws, for large and small images and for each
    dataset with its own range or default, each value within its HParam's declared range."""
    checked = 0
    for hparam, spec in ALGORITHM_SPECS[name].items():
        for dataset in (None, *spec.dataset_samples, *spec.dataset_defaults):
            for small_images in (False, True):
                for hparams_seed in range(20):
                    value = spec.value(hparams_seed, hparam, small_images, dataset=dataset)
                    assert declared_range_holds(spec, value), (
                        f"{hparam}={value!r} (seed {hparams_seed}, small_images={small_images}, "
                        f"dataset={dataset}) outside {spec.constraint or 'its declared range'}"
                    )
                    checked += 1
    assert checked >= 40 * len(COMMON_HPARAMS)
    resolved = resolve_hparams(ALGORITHMS.get(name), False, 0)
    assert set(resolved) == set(ALGORITHM_SPECS[name])  # every hparam the algorithm gets was checked


@pytest.mark.parametrize("name", sorted(ALGORITHM_SPECS))
def test_every_numeric_hparam_declares_a_range_and_every_string_its_choices(name):
    for hparam, spec in ALGORITHM_SPECS[name].items():
        if spec.type is str:
            assert spec.choices and spec.default in spec.choices, hparam
        elif spec.type in (int, float):
            assert spec.minimum is not None, f"{hparam} declares no minimum"


def test_declared_ranges():
    specs: dict[str, HParam] = {}
    for algorithm_specs in ALGORITHM_SPECS.values():
        specs.update(algorithm_specs)
    assert specs == {**COMMON_HPARAMS, **specs}  # the common ones are shared, never redeclared
    constraints = {name: spec.constraint for name, spec in specs.items()}
    for name in ("lr", "lr_d", "lr_g", "mixup_alpha", "dann_warmup_alpha"):
        assert constraints[name] == "positive", name
    for name in ("weight_decay", "weight_decay_d", "weight_decay_g", "grad_penalty", "lambda",
                 "irm_lambda", "vrex_lambda", "mmd_gamma", "groupdro_eta", "dann_warmup_iters",
                 "irm_penalty_anneal_iters", "vrex_penalty_anneal_iters"):
        assert constraints[name] == "at least 0", name
    assert constraints["batch_size"] == constraints["d_steps_per_g_step"] == "at least 1"
    assert constraints["mlp_width"] == "at least 1" and constraints["mlp_depth"] == "at least 2"
    assert constraints["beta1"] == "in [0, 1)" and constraints["mlp_dropout"] == "in [0, 1]"
    assert constraints["lr_schedule"] == "one of constant, cosine, inverse_decay"
    assert constraints["dann_mode"] == "alternating or grl"
    assert constraints["data_augmentation"] == ""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"lr": -1.0}, "lr must be positive, got -1.0"),
        ({"lr": float("nan")}, "lr must be finite, got nan"),
        ({"lr_schedule": "linear"}, "lr_schedule must be one of constant, cosine, inverse_decay, got 'linear'"),
        ({"dann_mode": "sideways"}, "dann_mode must be alternating or grl, got 'sideways'"),
        ({"beta1": 1.0}, "beta1 must be in [0, 1), got 1.0"),
        ({"mlp_dropout": 1.5}, "mlp_dropout must be in [0, 1], got 1.5"),
        ({"mlp_depth": 1}, "mlp_depth must be at least 2, got 1"),
        ({"mixup_alpha": 0.0}, "mixup_alpha must be positive, got 0.0"),
        ({"lr": "fast"}, "lr must be a number (positive), got 'fast'"),
        ({"lr": True}, "lr must be a number (positive), got True"),
    ],
)
def test_check_hparams_raises_one_line_naming_the_hparam(values, message):
    specs = {**hparam_specs(ALGORITHMS.get("DANN")), **hparam_specs(ALGORITHMS.get("Mixup"))}
    with pytest.raises(UserError) as error:
        check_hparams(values, specs)
    assert str(error.value) == message


def test_check_hparams_accepts_the_bounds_and_skips_unknown_names():
    specs = hparam_specs(ALGORITHMS.get("DANN"))
    check_hparams({"beta1": 0.0, "mlp_dropout": 1.0, "weight_decay": 0.0, "batch_size": 1,
                   "lr_schedule": "cosine", "data_augmentation": False, "not_an_hparam": -1}, specs)
    check_hparams({"lr": -1.0}, {})  # no spec, no check
    custom = HParam(0.5, lambda r: 0.5, maximum=1, exclusive_maximum=True)
    assert custom.constraint == "less than 1"
    with pytest.raises(UserError, match=r"^p must be less than 1, got 1$"):
        check_hparams({"p": 1}, {"p": custom})
    check_hparams({"p": float("-1e300")}, {"p": custom})
    with pytest.raises(UserError, match=r"^q must be finite, got inf$"):
        check_hparams({"q": float("inf")}, {"q": HParam(1.0, lambda r: 1.0)})
