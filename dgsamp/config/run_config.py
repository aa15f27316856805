"""RunConfig: every setting of one run, typed, grouped by concern, frozen.

    config = parse_run_config(["--dataset", "PACSMini", "--algorithm", "ERM"])
    config.data.dataset, config.schedule.epochs, config.hparams["lr"], config.job_id

A callee takes the part it needs: ``data`` (what is trained and evaluated on, and how it
is split), ``model`` (algorithm and backbone), ``schedule`` (protocol preset and training
length), ``system`` (device and resources) and ``tracking`` (where results go). The values
are resolved and validated once, by ``dgsamp.config.resolve``; ``RunConfig.from_record``
rebuilds a finished run's config from the ``args`` and ``hparams`` of its results lines.

``job_id`` is a hash of everything that changes the numbers (not the output directory,
the progress style or the W&B settings), so two runs with the same id are the same
experiment. ``args`` is the flat flag mapping that results lines carry (DomainBed's key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from dgsamp.hparams import NEUTRAL_HPARAMS
from dgsamp.registry import MODES

# Settings that change no number (or only how it is spelled: the raw --hparams JSON and
# the plugin path are hashed through the resolved hparams and the algorithm name; "auto"
# and "cuda:0" name the same device, and a resume on another kind of device is refused).
NOT_IN_JOB_ID = {
    "output_dir", "progress", "wandb", "wandb_project", "wandb_entity", "wandb_group",
    "wandb_tags", "no_resume", "num_workers", "eval_batch_size", "energy", "hparams", "plugin", "device",
    "target", "task_label",  # derived from test_envs, task and source
    "keep_checkpoints",
}


@dataclass(frozen=True)
class DataConfig:
    """What the run trains and evaluates on, and how each domain is split."""

    dataset: str
    data_dir: str | None
    test_envs: tuple[int, ...]
    task: str  # "domain_generalization" or "domain_adaptation"
    trial_seed: int  # seeds the in/out split (DomainBed)
    holdout_fraction: float
    uda_holdout_fraction: float
    unlabeled_split: str  # "uda" (DomainBed's uda split) or "test_in" (DA: the test in-split)
    eval_augmentation: str  # "train_domains" or "none"
    source: tuple[int, ...] | None  # DA's labelled domains (--source); None: every non-test domain
    target: tuple[int, ...] | None  # DA's targets (= test_envs); None in DG
    task_label: str | None  # DA: "A→W"
    transforms: str  # image transforms: "domainbed" or "tllib" (dgsamp.data.augment_tllib)


@dataclass(frozen=True)
class ModelConfig:
    """The algorithm and the backbone it is built on."""

    algorithm: str
    backbone: str
    pretrained: str
    pretrained_file: str | None
    freeze_bn: bool
    resolution: int | None
    featurizer_passes: str  # "per_domain" or "joint"
    plugin: tuple[str, ...]
    implementation: str | None  # the registered class the algorithm name stands for (tllib: DANN_tllib)
    bottleneck: str  # layers between the featurizer and the classifier: none, bn_relu, ...
    bottleneck_width: int


@dataclass(frozen=True)
class ScheduleConfig:
    """The protocol preset and the training length it resolved to."""

    protocol: str  # the preset (dgsamp.config.presets) the settings started from
    steps: int | None  # step mode: DomainBed's n_steps; None in epoch mode
    checkpoint_freq: int | None  # step mode: evaluation period in steps
    evaluate_last_step: bool  # step mode: also evaluate after step steps - 1
    epochs: int  # the trainer's epochs (step mode: the number of evaluation points)
    steps_per_epoch: int | None


@dataclass(frozen=True)
class SystemConfig:
    """Where and how the run computes: none of these change a number on the CPU."""

    device: str
    precision: str
    data_cache: str
    num_workers: int
    eval_batch_size: int
    deterministic: bool
    compile: bool


@dataclass(frozen=True)
class TrackingConfig:
    """Where results, progress, energy readings and W&B records go."""

    output_dir: str
    no_resume: bool
    progress: str
    energy: str
    wandb: str
    wandb_project: str
    wandb_entity: str | None
    wandb_group: str | None
    wandb_tags: tuple[str, ...]
    keep_checkpoints: str  # "none", or "selected": keep the selected model's weights (selected_model.pt)


PARTS = {"data": DataConfig, "model": ModelConfig, "schedule": ScheduleConfig, "system": SystemConfig,
         "tracking": TrackingConfig}

# The flat ``args`` of a results line, in the order results lines have always listed them.
ARG_ORDER = (
    "dataset", "data_dir", "algorithm", "backbone", "test_envs", "task", "hparams", "hparams_seed",
    "trial_seed", "seed", "protocol", "steps", "checkpoint_freq", "evaluate_last_step", "epochs",
    "steps_per_epoch", "holdout_fraction", "uda_holdout_fraction", "unlabeled_split", "featurizer_passes",
    "eval_augmentation", "output_dir", "no_resume", "plugin", "pretrained", "pretrained_file", "freeze_bn",
    "resolution", "device", "precision", "data_cache", "num_workers", "eval_batch_size", "deterministic",
    "compile", "progress", "energy", "wandb", "wandb_project", "wandb_entity", "wandb_group", "wandb_tags",
    "source", "target", "task_label", "implementation", "bottleneck", "bottleneck_width", "keep_checkpoints",
    "transforms",
)

# What a results line written before a setting existed means by its absence.
RECORD_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "data_dir": None, "task": "domain_generalization", "hparams": None, "hparams_seed": 0, "trial_seed": 0,
    "protocol": "dgsamp", "steps": None, "checkpoint_freq": None, "evaluate_last_step": True,
    "steps_per_epoch": None, "holdout_fraction": 0.2, "uda_holdout_fraction": 0.0, "unlabeled_split": "test_in",
    "featurizer_passes": "joint", "eval_augmentation": "none", "output_dir": "", "no_resume": False, "plugin": (),
    "pretrained": "none", "pretrained_file": None, "freeze_bn": False, "resolution": None, "device": "auto",
    "precision": "fp32", "data_cache": "auto", "num_workers": 1, "eval_batch_size": 256, "deterministic": False,
    "compile": False, "progress": "lines", "energy": "none", "wandb": "disabled", "wandb_project": "dgsamp",
    "wandb_entity": None, "wandb_group": None, "wandb_tags": (),
    "source": None, "target": None, "task_label": None, "implementation": None, "bottleneck": "none",
    "bottleneck_width": 0, "keep_checkpoints": "none", "transforms": "domainbed",
})

NEUTRAL_ARGS = {"source": None, "target": None, "task_label": None, "implementation": None, "bottleneck": "none",
                "bottleneck_width": 0, "transforms": "domainbed"}
"""Settings added after runs existed, at values that change nothing: left out of the job id
(as ``NEUTRAL_HPARAMS``), so the ids of earlier runs, and the directories they name, stay valid."""


@dataclass(frozen=True)
class RunConfig:
    """One run's settings. ``hparams``: resolved hyperparameters; ``modes``: every registered
    training mode's options (``modes[name][name]`` is its switch), on or off."""

    data: DataConfig
    model: ModelConfig
    schedule: ScheduleConfig
    system: SystemConfig
    tracking: TrackingConfig
    hparams_json: str | None
    hparams_seed: int
    seed: int
    hparams: Mapping[str, Any]
    modes: Mapping[str, Mapping[str, Any]]

    @property
    def active_modes(self) -> list[str]:
        """Names of the modes switched on, in registration order."""
        return [name for name in self.modes if MODES.get(name).is_on(self.modes[name])]

    @property
    def args(self) -> dict[str, Any]:
        """The flat flag mapping (results lines' ``args``, W&B config): one key per flag."""
        values: dict[str, Any] = {"hparams": self.hparams_json, "hparams_seed": self.hparams_seed, "seed": self.seed}
        for part in PARTS:
            values.update(dataclasses.asdict(getattr(self, part)))
        flat = {name: list(values[name]) if isinstance(values[name], tuple) else values[name] for name in ARG_ORDER}
        for options in self.modes.values():
            flat.update(options)
        return flat

    @property
    def job_id(self) -> str:
        relevant = {k: v for k, v in self.args.items()
                    if k not in NOT_IN_JOB_ID and not (k in NEUTRAL_ARGS and v == NEUTRAL_ARGS[k])}
        hparams = {k: v for k, v in self.hparams.items()
                   if not (k in NEUTRAL_HPARAMS and v == NEUTRAL_HPARAMS[k])}
        text = json.dumps([relevant, hparams], sort_keys=True, default=str)
        return hashlib.md5(text.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"args": self.args, "hparams": dict(self.hparams)}

    def replace(self, part: str, **changes: Any) -> RunConfig:
        """A copy with some fields of one part changed (``config.replace("tracking", output_dir=...)``)."""
        return dataclasses.replace(self, **{part: dataclasses.replace(getattr(self, part), **changes)})

    @classmethod
    def from_parts(cls, values: Mapping[str, Any], hparams: Mapping[str, Any],
                   modes: Mapping[str, Mapping[str, Any]]) -> RunConfig:
        """Group flat, already resolved ``values`` (keys: every part's fields, ``hparams_json``,
        ``hparams_seed``, ``seed``) into a frozen RunConfig."""
        parts = {name: part(**{f.name: values[f.name] for f in dataclasses.fields(part)})
                 for name, part in PARTS.items()}
        return cls(**parts, hparams_json=values["hparams_json"], hparams_seed=values["hparams_seed"],
                   seed=values["seed"], hparams=MappingProxyType(dict(hparams)),
                   modes=MappingProxyType({name: MappingProxyType(dict(options)) for name, options in modes.items()}))

    @classmethod
    def from_record(cls, args: Mapping[str, Any], hparams: Mapping[str, Any]) -> RunConfig:
        """The config of a finished run, from a results line's ``args`` and ``hparams``.

        The values are the run's effective ones (nothing is resolved again); a setting the
        line predates takes the value it had then (``RECORD_DEFAULTS``)."""
        values = {name: args.get(name, RECORD_DEFAULTS.get(name)) for name in ARG_ORDER}
        values["hparams_json"] = values.pop("hparams")
        values["test_envs"] = tuple(int(env) for env in values["test_envs"])
        for name in ("plugin", "wandb_tags"):
            values[name] = tuple(values[name] or ())
        for name in ("source", "target"):
            values[name] = None if values[name] is None else tuple(int(env) for env in values[name])
        modes = {}
        for name in MODES.in_registration_order():
            mode = MODES.get(name)
            modes[name] = {option: args.get(option, spec.default) for option, spec in mode.OPTIONS.items()}
        return cls.from_parts(values, hparams, modes)
