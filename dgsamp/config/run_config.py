"""RunConfig: every setting of one run, typed, validated once, frozen.

    config = parse_run_config(["--dataset", "PACSMini", "--algorithm", "ERM"])
    config.epochs, config.hparams["lr"], config.modes["gradsamp"]["gradsamp_period"], config.job_id

``RunConfig.from_flags`` is the one place where flags become settings: ``dgsamp train``,
``dgsamp sweep launch`` (every job, before any starts) and the tests all go through it.
Each value is converted by the parser and checked here, once; a training mode's options
are checked by the rules the mode declares (``dgsamp.modes.base.Option``).

``job_id`` is a hash of everything that changes the numbers (not the output directory,
the progress style or the W&B settings), so two runs with the same id are the same
experiment. ``args`` is the flat flag mapping that results lines carry (DomainBed's key).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dgsamp.errors import UserError
from dgsamp.hparams import resolve_hparams
from dgsamp.modes.base import RunShape, check_modes_combine
from dgsamp.registry import ALGORITHMS, DATASETS, MODES
from dgsamp.training.flags import all_hparam_specs, mode_option_names
from dgsamp.training.presets import get_protocol
from dgsamp.training.protocol_flags import resolve_protocol
from dgsamp.training.schedule import Schedule, epoch_schedule, step_schedule
from dgsamp.utils.seeding import seed_hash

# Settings that change no number (or only how it is spelled: the raw --hparams JSON and
# the plugin path are hashed through the resolved hparams and the algorithm name; "auto"
# and "cuda:0" name the same device, and a resume on another kind of device is refused).
NOT_IN_JOB_ID = {
    "output_dir", "progress", "wandb", "wandb_project", "wandb_entity", "wandb_group",
    "wandb_tags", "no_resume", "num_workers", "eval_batch_size", "energy", "hparams", "plugin", "device",
}
AT_LEAST = {"epochs": 1, "steps_per_epoch": 1, "steps": 1, "checkpoint_freq": 1, "eval_batch_size": 1,
            "num_workers": 0, "resolution": 16}


@dataclass(frozen=True)
class RunConfig:
    """One run's settings. ``hparams``: resolved hyperparameters; ``modes``: every registered
    training mode's options (``modes[name][name]`` is its switch), on or off."""

    dataset: str
    data_dir: str | None
    algorithm: str
    backbone: str
    test_envs: tuple[int, ...]
    task: str
    hparams_json: str | None
    hparams_seed: int
    trial_seed: int
    seed: int
    protocol: str  # the preset (dgsamp.training.presets) the settings below started from
    steps: int | None  # step mode: DomainBed's n_steps; None in epoch mode
    checkpoint_freq: int | None  # step mode: evaluation period in steps
    evaluate_last_step: bool  # step mode: also evaluate after step steps - 1
    epochs: int  # the trainer's epochs (step mode: the number of evaluation points)
    steps_per_epoch: int | None
    holdout_fraction: float
    uda_holdout_fraction: float
    unlabeled_split: str  # "uda" (DomainBed's uda split) or "test_in" (DA: the test in-split)
    featurizer_passes: str  # "per_domain" or "joint"
    eval_augmentation: str  # "train_domains" or "none"
    output_dir: str
    no_resume: bool
    plugin: tuple[str, ...]
    pretrained: str
    pretrained_file: str | None
    freeze_bn: bool
    resolution: int | None
    device: str
    precision: str
    data_cache: str
    num_workers: int
    eval_batch_size: int
    deterministic: bool
    compile: bool
    progress: str
    energy: str
    wandb: str
    wandb_project: str
    wandb_entity: str | None
    wandb_group: str | None
    wandb_tags: tuple[str, ...]
    hparams: Mapping[str, Any]
    modes: Mapping[str, Mapping[str, Any]]

    @property
    def active_modes(self) -> list[str]:
        """Names of the modes switched on, in registration order."""
        return [name for name in self.modes if MODES.get(name).is_on(self.modes[name])]

    @property
    def args(self) -> dict[str, Any]:
        """The flat flag mapping (results lines' ``args``, W&B config): one key per flag."""
        flat: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name in ("hparams", "modes"):
                continue
            if isinstance(value, tuple):
                value = list(value)
            flat["hparams" if item.name == "hparams_json" else item.name] = value
        for options in self.modes.values():
            flat.update(options)
        return flat

    @property
    def job_id(self) -> str:
        relevant = {k: v for k, v in self.args.items() if k not in NOT_IN_JOB_ID}
        text = json.dumps([relevant, dict(self.hparams)], sort_keys=True, default=str)
        return hashlib.md5(text.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"args": self.args, "hparams": dict(self.hparams)}

    def schedule(self, pass_steps: int) -> Schedule:
        """Updates per trainer epoch (``dgsamp.training.schedule``); ``pass_steps``: the
        updates of one pass over the largest training domain, the default epoch length."""
        if self.steps is not None:
            return step_schedule(self.steps, int(self.checkpoint_freq or 1), self.evaluate_last_step)
        return epoch_schedule(self.epochs, self.steps_per_epoch or pass_steps)

    @classmethod
    def from_flags(cls, namespace: argparse.Namespace) -> RunConfig:
        """Validate parsed ``dgsamp train`` flags (unset ones are None), fill defaults, freeze."""
        raw = {k: v for k, v in vars(namespace).items() if k not in ("func", "command")}
        hparam_names = set(all_hparam_specs())
        option_names = mode_option_names()
        args = {k: v for k, v in raw.items() if k not in hparam_names and k not in option_names}
        dataset_class = DATASETS.get(args["dataset"])
        algorithm_class = ALGORITHMS.get(args["algorithm"])
        _check_run_flags(args, list(dataset_class.ENVIRONMENTS))
        overrides = {**_parse_hparams_json(args["hparams"]),
                     **{k: v for k, v in raw.items() if k in hparam_names and v is not None}}
        registry = get_protocol(args["protocol"]).settings["hparams_registry"].value
        hparams = resolve_hparams(  # checks every value against its HParam's range
            algorithm_class, dataset_class.SMALL_IMAGES, args["hparams_seed"], overrides,
            trial_seed=args["trial_seed"], dataset=args["dataset"], registry=registry, algorithm=args["algorithm"],
        )
        protocol = resolve_protocol(args, dataset_class, algorithm_class, hparams)  # preset, then flags
        test_envs = tuple(sorted(args["test_envs"]))
        seed = args["seed"]
        if seed is None:  # as DomainBed's sweeps derive it
            seed = seed_hash(args["dataset"], args["algorithm"], list(test_envs), args["hparams_seed"],
                             args["trial_seed"])
        modes = {name: MappingProxyType(_mode_options(name, raw, RunShape(protocol.epochs, seed)))
                 for name in MODES.in_registration_order()}
        wandb = args["wandb"] or ("online" if os.environ.get("WANDB_SWEEP_ID") else "disabled")
        config = cls(
            dataset=args["dataset"], data_dir=args["data_dir"], algorithm=args["algorithm"],
            backbone=protocol.backbone, test_envs=test_envs, task=args["task"],
            hparams_json=args["hparams"], hparams_seed=args["hparams_seed"], trial_seed=args["trial_seed"],
            seed=seed, protocol=protocol.protocol, steps=protocol.steps, checkpoint_freq=protocol.checkpoint_freq,
            evaluate_last_step=protocol.evaluate_last_step, epochs=protocol.epochs,
            steps_per_epoch=protocol.steps_per_epoch, holdout_fraction=args["holdout_fraction"],
            uda_holdout_fraction=protocol.uda_holdout_fraction, unlabeled_split=protocol.unlabeled_split,
            featurizer_passes=protocol.featurizer_passes, eval_augmentation=protocol.eval_augmentation,
            output_dir=args["output_dir"] or "",
            no_resume=args["no_resume"], plugin=tuple(args["plugin"]), pretrained=args["pretrained"],
            pretrained_file=args["pretrained_file"], freeze_bn=protocol.freeze_bn, resolution=args["resolution"],
            device=args["device"], precision=args["precision"], data_cache=args["data_cache"],
            num_workers=args["num_workers"], eval_batch_size=args["eval_batch_size"],
            deterministic=args["deterministic"], compile=args["compile"], progress=args["progress"],
            energy=args["energy"], wandb=wandb, wandb_project=args["wandb_project"],
            wandb_entity=args["wandb_entity"], wandb_group=args["wandb_group"], wandb_tags=tuple(args["wandb_tags"]),
            hparams=MappingProxyType(hparams), modes=MappingProxyType(modes),
        )
        check_modes_combine([MODES.get(name) for name in config.active_modes])
        if not config.output_dir:
            config = dataclasses.replace(config, output_dir=str(Path("runs") / config.job_id))
        return config


def parse_run_config(argv: Sequence[str]) -> RunConfig:
    """``dgsamp train`` argv -> RunConfig (plugins named by ``--plugin`` are loaded first)."""
    from dgsamp.cli import build_train_parser, load_plugins

    load_plugins(argv)
    return RunConfig.from_flags(build_train_parser().parse_args(list(argv)))


def _parse_hparams_json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"--hparams is not valid JSON ({error.msg} at char {error.pos}): {text}") from None
    if not isinstance(value, dict):
        raise UserError(f"--hparams must be a JSON object like '{{\"lr\": 1e-4}}', got: {text}")
    return value


def _check_run_flags(args: dict[str, Any], environments: list[str]) -> None:
    num_envs = len(environments)
    test_envs = args["test_envs"]
    bad = [i for i in test_envs if not 0 <= i < num_envs]
    if bad:
        raise UserError(f"--test_envs {bad[0]} is out of range: {args['dataset']} has domains 0..{num_envs - 1}")
    repeated = sorted({i for i in test_envs if test_envs.count(i) > 1})
    if repeated:
        raise UserError(f"--test_envs names domain {repeated[0]} twice; list each test domain once")
    if len(test_envs) >= num_envs:
        raise UserError(f"--test_envs holds all {num_envs} domains; leave at least one for training")
    for name, minimum in AT_LEAST.items():
        if args.get(name) is not None and args[name] < minimum:
            raise UserError(f"--{name} must be at least {minimum}, got {args[name]}")
    if not 0.0 < args["holdout_fraction"] < 1.0:
        raise UserError(f"--holdout_fraction must be between 0 and 1, got {args['holdout_fraction']}")


def _mode_options(name: str, raw: Mapping[str, Any], run: RunShape) -> dict[str, Any]:
    """A mode's options with defaults filled in, after its declared rules: a value's own
    check, no option that cannot have an effect, then the mode's cross-option rules."""
    mode = MODES.get(name)
    given = {option: raw[option] for option in mode.OPTIONS if raw.get(option) is not None}
    options = {option: given.get(option, spec.default) for option, spec in mode.OPTIONS.items()}
    on = mode.is_on(options)
    for option, spec in mode.OPTIONS.items():
        if option not in given or option == name:
            continue
        if not on or (spec.applies is not None and not spec.applies(options)):
            needs = spec.requires or f"--{name}"
            raise UserError(f"--{option} has no effect without {needs}; drop it or add {needs}")
    for option, spec in mode.OPTIONS.items():
        reason = spec.check(options[option]) if spec.check is not None and (on or option == name) else None
        if reason:
            raise UserError(f"--{option} {reason}")
    if on:
        mode.validate(options, run)
    return options
