"""Hyperparameters: defaults, random draws seeded DomainBed-style, and declared ranges.

Every hyperparameter is an ``HParam``: a default and a ``sample(rng)`` for random search,
each possibly different for small (MNIST-size) images. ``hparams_seed == 0`` gives the
defaults; any other seed draws, exactly as DomainBed's sweeps do, from a base seed
``base = seed_hash(hparams_seed, trial_seed)`` and then every hparam from its own
``RandomState(seed_hash(base, name))``, so adding a hyperparameter never changes the others.

Each ``HParam`` also declares what values are valid: ``minimum`` / ``maximum`` (inclusive
unless ``exclusive_minimum`` / ``exclusive_maximum``) for numbers, ``choices`` for
enumerations. ``check_hparams(values, specs)`` enforces them (floats must also be finite)
and raises a one-line ``UserError`` naming the hparam, e.g. ``lr must be positive, got
-1.0``. ``resolve_hparams`` checks defaults, draws and overrides alike.

Common hparams (lr, batch_size, ...) live here; an algorithm declares its own in its
``HPARAMS`` class attribute, so a plugin algorithm brings its hparams (and ranges) with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np

from dgsamp.errors import UserError
from dgsamp.hparams_domainbed2020 import ALGORITHMS_2020, DEFAULTS_2020, draws_2020
from dgsamp.utils.seeding import seed_hash

Sampler = Callable[[np.random.RandomState], Any]


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: default, random-search distribution, help line and valid range."""

    default: Any
    sample: Sampler
    help: str = ""
    small_default: Any = None  # default for small images (MNIST); None: same as default
    small_sample: Sampler | None = None
    _: KW_ONLY
    minimum: float | None = None  # lower bound; None: unbounded below
    maximum: float | None = None  # upper bound; None: unbounded above
    exclusive_minimum: bool = False  # True: value > minimum, else value >= minimum
    exclusive_maximum: bool = False  # True: value < maximum, else value <= maximum
    choices: tuple[Any, ...] | None = None  # the only valid values; None: any
    # draws for named datasets (DomainBed's per-dataset ranges, e.g. DomainNet's batch_size);
    # they replace ``sample`` / ``small_sample`` for that dataset, defaults stay
    dataset_samples: Mapping[str, Sampler] = field(default_factory=dict, hash=False)
    # defaults for named datasets (DomainBed's RDM: rdm_lambda 0.5 on DomainNet, 5 elsewhere);
    # they replace ``default`` / ``small_default`` for that dataset
    dataset_defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def type(self) -> type:
        return type(self.default)

    @property
    def constraint(self) -> str:
        """The valid values in words ("positive", "in [0, 1)", "constant or cosine"), or ""."""
        if self.choices is not None:
            names = [str(choice) for choice in self.choices]
            if len(names) <= 2:
                return " or ".join(names)
            return "one of " + ", ".join(names)
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            left = "(" if self.exclusive_minimum else "["
            right = ")" if self.exclusive_maximum else "]"
            return f"in {left}{low}, {high}{right}"
        if low is not None:
            if self.exclusive_minimum:
                return "positive" if low == 0 else f"greater than {low}"
            return f"at least {low}"
        if high is not None:
            return f"less than {high}" if self.exclusive_maximum else f"at most {high}"
        return ""

    def check(self, name: str, value: Any) -> None:
        """Raise a one-line ``UserError`` if ``value`` is outside this hparam's declared range."""
        if self.choices is not None:
            if value not in self.choices:
                raise UserError(f"{name} must be {self.constraint}, got {value!r}")
            return
        if self.minimum is None and self.maximum is None:
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"{name} must be finite, got {value}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{name} must be a number ({self.constraint}), got {value!r}")
        if not math.isfinite(value):
            raise UserError(f"{name} must be finite, got {value}")
        low, high = self.minimum, self.maximum
        too_low = low is not None and (value <= low if self.exclusive_minimum else value < low)
        too_high = high is not None and (value >= high if self.exclusive_maximum else value > high)
        if too_low or too_high:
            raise UserError(f"{name} must be {self.constraint}, got {value}")

    def value(
        self,
        hparams_seed: int,
        name: str,
        small_images: bool,
        trial_seed: int = 0,
        dataset: str | None = None,
    ) -> Any:
        """The default (``hparams_seed == 0``) or DomainBed's seeded draw for ``name``;
        ``dataset`` (a registered dataset name) selects a ``dataset_samples`` draw and a
        ``dataset_defaults`` default."""
        default = self.default
        sample = self.sample
        if small_images:
            default = default if self.small_default is None else self.small_default
            sample = sample if self.small_sample is None else self.small_sample
        if dataset is not None and dataset in self.dataset_samples:
            sample = self.dataset_samples[dataset]
        if dataset is not None and dataset in self.dataset_defaults:
            default = self.dataset_defaults[dataset]
        if hparams_seed == 0:
            return default
        base_seed = seed_hash(hparams_seed, trial_seed)
        draw = sample(np.random.RandomState(seed_hash(base_seed, name)))
        return type(default)(draw.item() if isinstance(draw, np.generic) else draw)


COMMON_HPARAMS: dict[str, HParam] = {
    "lr": HParam(
        5e-5, lambda r: 10 ** r.uniform(-5, -3.5), "learning rate (Adam)",
        small_default=1e-3, small_sample=lambda r: 10 ** r.uniform(-4.5, -2.5),
        minimum=0, exclusive_minimum=True,
    ),
    "weight_decay": HParam(
        0.0, lambda r: 10 ** r.uniform(-6, -2), "Adam weight decay",
        small_sample=lambda r: 0.0, minimum=0,
    ),
    "batch_size": HParam(
        32, lambda r: int(2 ** r.uniform(3, 5.5)), "examples per domain per step",
        small_default=64, small_sample=lambda r: int(2 ** r.uniform(3, 9)), minimum=1,
        dataset_samples={"DomainNet": lambda r: int(2 ** r.uniform(3, 5))},
    ),
    "data_augmentation": HParam(True, lambda r: True, "DomainBed's image augmentation"),
    "resnet_dropout": HParam(
        0.0, lambda r: r.choice([0.0, 0.1, 0.5]),
        "dropout on the image backbone's pooled features (timm backbones)",
        minimum=0, maximum=1,
    ),
    "nonlinear_classifier": HParam(
        False, lambda r: bool(r.choice([False, False])),
        "classifier D -> D/2 -> D/4 -> K with ReLUs instead of one linear layer",
    ),
    "lr_schedule": HParam(
        "constant", lambda r: "constant",
        "constant, cosine over all steps, or inverse_decay: lr * (1 + lr_gamma * step) ** -lr_decay (tllib)",
        choices=("constant", "cosine", "inverse_decay"),
    ),
    # tllib's optimisation (--protocol tllib); the defaults are DomainBed's Adam and change nothing
    "optimizer": HParam("adam", lambda r: "adam", "adam (DomainBed) or sgd (tllib)", choices=("adam", "sgd")),
    "momentum": HParam(0.9, lambda r: 0.9, "SGD momentum (optimizer sgd)", minimum=0, maximum=1,
                       exclusive_maximum=True),
    "nesterov": HParam(True, lambda r: True, "SGD with Nesterov momentum (optimizer sgd)"),
    "backbone_lr_mult": HParam(1.0, lambda r: 1.0, "the backbone's lr as a multiple of lr (tllib: 0.1)",
                               minimum=0, exclusive_minimum=True),
    "lr_gamma": HParam(0.001, lambda r: 0.001, "inverse_decay's gamma", minimum=0),
    "lr_decay": HParam(0.75, lambda r: 0.75, "inverse_decay's exponent", minimum=0),
}

NEUTRAL_HPARAMS = {"optimizer": "adam", "momentum": 0.9, "nesterov": True, "backbone_lr_mult": 1.0,
                   "lr_gamma": 0.001, "lr_decay": 0.75}
"""Hparams added after runs existed, at values that change nothing: left out of a job id
(``RunConfig.job_id``), so the ids, and the run directories they name, stay valid."""

DEPENDENT_HPARAMS = {"momentum": ("optimizer", "sgd"), "nesterov": ("optimizer", "sgd"),
                     "lr_gamma": ("lr_schedule", "inverse_decay"), "lr_decay": ("lr_schedule", "inverse_decay")}
"""Hparams that act only when another has a value: given otherwise, they are refused."""


def hparam_specs(algorithm_class: type) -> dict[str, HParam]:
    """The hyperparameters one algorithm accepts: the common ones plus its own."""
    return {**COMMON_HPARAMS, **getattr(algorithm_class, "HPARAMS", {})}


def check_hparams(values: Mapping[str, Any], specs: Mapping[str, HParam]) -> None:
    """Check every value against its spec's declared range; names without a spec are skipped.

    Raises ``UserError`` with one line naming the first bad hparam (in ``values`` order).
    """
    for name, value in values.items():
        spec = specs.get(name)
        if spec is not None:
            spec.check(name, value)


def resolve_hparams(
    algorithm_class: type,
    small_images: bool,
    hparams_seed: int,
    overrides: dict[str, Any] | None = None,
    trial_seed: int = 0,
    dataset: str | None = None,
    registry: str = "domainbed",
    algorithm: str | None = None,
    given: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Defaults or seeded draws for ``algorithm_class``, then ``overrides`` on top, checked.

    ``dataset``: the registered dataset name, for hparams whose DomainBed range depends on
    it (DomainNet's ``batch_size``); ``None`` uses the generic ranges. ``registry``:
    ``domainbed`` draws one RandomState per name (DomainBed since 987b75e);
    ``domainbed2020`` replays 7df6f06's single-RandomState sequence for the 14 algorithms
    it knew (``algorithm``, their registered name; ``dgsamp.hparams_domainbed2020``) and
    sets later hparams to the value that behaves as 7df6f06 did (``DEFAULTS_2020``).
    ``given``: the names the user set; one in ``DEPENDENT_HPARAMS`` is refused when the
    hparam it acts through does not have its value.
    """
    specs = hparam_specs(algorithm_class)
    wanted = {}  # overrides checked and converted before anything is drawn
    for name, value in (overrides or {}).items():
        if name not in specs:
            known = ", ".join(sorted(specs))
            raise UserError(
                f"unknown hparam '{name}' for algorithm {algorithm_class.__name__}; known: {known}"
            )
        wanted[name] = coerce(name, value, specs[name].type)
    old_sequence = registry == "domainbed2020" and hparams_seed != 0 and algorithm in ALGORITHMS_2020
    hparams = {
        name: spec.value(0 if old_sequence else hparams_seed, name, small_images, trial_seed, dataset)
        for name, spec in specs.items()
    }
    if old_sequence:
        sequence_seed = seed_hash(hparams_seed, trial_seed)  # 7df6f06's one RandomState for all draws
        drawn = draws_2020(str(algorithm), dataset or "", sequence_seed)
        hparams.update({name: specs[name].type(value) for name, value in drawn.items() if name in specs})
    if registry == "domainbed2020":
        hparams.update({k: v for k, v in DEFAULTS_2020.get(str(algorithm), {}).items() if k in specs})
    hparams.update(wanted)
    for name, (needs, value) in DEPENDENT_HPARAMS.items():  # given without the hparam it acts through
        if name in given and hparams.get(needs) != value:
            raise UserError(f"hparam {name} has no effect unless {needs} is {value}; drop it or set {needs} {value}")
    check_hparams(hparams, specs)
    return hparams


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
