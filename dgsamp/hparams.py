"""Hyperparameters: defaults and random draws, seeded DomainBed-style.

Every hyperparameter is an ``HParam``: a default and a ``sample(rng)`` for random search,
each possibly different for small (MNIST-size) images. ``hparams_seed == 0`` gives the
defaults; any other seed draws, exactly as DomainBed's sweeps do, from a base seed
``base = seed_hash(hparams_seed, trial_seed)`` and then every hparam from its own
``RandomState(seed_hash(base, name))``, so adding a hyperparameter never changes the others.

Resolved values are checked: every hparam whose name contains ``lr`` must be finite and
> 0, every one whose name contains ``weight_decay`` must be >= 0.

Common hparams (lr, batch_size, ...) live here; an algorithm declares its own in its
``HPARAMS`` class attribute, so a plugin algorithm brings its hparams with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dgsamp.errors import UserError
from dgsamp.utils.seeding import seed_hash

Sampler = Callable[[np.random.RandomState], Any]


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: its default, its random-search distribution, and a help line."""

    default: Any
    sample: Sampler
    help: str = ""
    small_default: Any = None  # default for small images (MNIST); None: same as default
    small_sample: Sampler | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def value(self, hparams_seed: int, name: str, small_images: bool, trial_seed: int = 0) -> Any:
        """The default (``hparams_seed == 0``) or DomainBed's seeded draw for ``name``."""
        default = self.default
        sample = self.sample
        if small_images:
            default = default if self.small_default is None else self.small_default
            sample = sample if self.small_sample is None else self.small_sample
        if hparams_seed == 0:
            return default
        base_seed = seed_hash(hparams_seed, trial_seed)
        draw = sample(np.random.RandomState(seed_hash(base_seed, name)))
        return type(default)(draw.item() if isinstance(draw, np.generic) else draw)


COMMON_HPARAMS: dict[str, HParam] = {
    "lr": HParam(
        5e-5, lambda r: 10 ** r.uniform(-5, -3.5), "learning rate (Adam)",
        small_default=1e-3, small_sample=lambda r: 10 ** r.uniform(-4.5, -2.5),
    ),
    "weight_decay": HParam(
        0.0, lambda r: 10 ** r.uniform(-6, -2), "Adam weight decay",
        small_sample=lambda r: 0.0,
    ),
    "batch_size": HParam(
        32, lambda r: int(2 ** r.uniform(3, 5.5)), "examples per domain per step",
        small_default=64, small_sample=lambda r: int(2 ** r.uniform(3, 9)),
    ),
    "data_augmentation": HParam(True, lambda r: True, "DomainBed's image augmentation"),
    "lr_schedule": HParam("constant", lambda r: "constant", "constant or cosine over all steps"),
}


def hparam_specs(algorithm_class: type) -> dict[str, HParam]:
    """The hyperparameters one algorithm accepts: the common ones plus its own."""
    return {**COMMON_HPARAMS, **getattr(algorithm_class, "HPARAMS", {})}


def resolve_hparams(
    algorithm_class: type,
    small_images: bool,
    hparams_seed: int,
    overrides: dict[str, Any] | None = None,
    trial_seed: int = 0,
) -> dict[str, Any]:
    """Defaults or seeded draws for ``algorithm_class``, then ``overrides`` on top, checked."""
    specs = hparam_specs(algorithm_class)
    hparams = {
        name: spec.value(hparams_seed, name, small_images, trial_seed) for name, spec in specs.items()
    }
    for name, value in (overrides or {}).items():
        if name not in specs:
            known = ", ".join(sorted(specs))
            raise UserError(
                f"unknown hparam '{name}' for algorithm {algorithm_class.__name__}; known: {known}"
            )
        hparams[name] = coerce(name, value, specs[name].type)
    for name, value in hparams.items():
        check_range(name, value)
    return hparams


def check_range(name: str, value: Any) -> None:
    """Learning rates (names containing ``lr``) finite and > 0, weight decays >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if "lr" in name and not (math.isfinite(value) and value > 0):
        raise UserError(f"hparam '{name}' must be finite and > 0 ({name} must be positive), got {value}")
    if "weight_decay" in name and not value >= 0:
        raise UserError(f"hparam '{name}' must be >= 0, got {value}")


def coerce(name: str, value: Any, kind: type) -> Any:
    """Convert a user-given value to the hparam's type, or raise a one-line UserError."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"1", "true", "yes"}:
            return True
        if str(value).lower() in {"0", "false", "no"}:
            return False
    else:
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            converted = kind(value)
            if kind is float and not np.isfinite(converted):
                raise ValueError
            return converted
        except (TypeError, ValueError):
            pass
    raise UserError(f"hparam '{name}' expects {kind.__name__}, got {value!r}")
