"""RunConfig: the validated arguments and resolved hyperparameters of one run.

    config = RunConfig.from_namespace(parsed_args)
    config.epochs, config.hparams["lr"], config.job_id

``job_id`` is a hash of everything that changes the numbers (not the output directory,
the progress style or the W&B settings), so two runs with the same id are the same
experiment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dgsamp.errors import UserError
from dgsamp.hparams import resolve_hparams
from dgsamp.modes.gradsamp.schedule import GradSampSchedule
from dgsamp.modes.ssprop.schedule import SSPropSchedule
from dgsamp.registry import ALGORITHMS, DATASETS
from dgsamp.utils.seeding import seed_hash

# Settings that change no number (or only how it is spelled: the raw --hparams JSON and
# the plugin path are hashed through the resolved hparams and the algorithm name; "auto"
# and "cuda:0" name the same device, and a resume on another kind of device is refused).
NOT_IN_JOB_ID = {
    "output_dir", "progress", "wandb", "wandb_project", "wandb_entity", "wandb_group",
    "wandb_tags", "no_resume", "num_workers", "eval_batch_size", "command", "func",
    "energy", "hparams", "plugin", "device",
}


@dataclass(frozen=True)
class RunConfig:
    args: Mapping[str, Any]
    hparams: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["args"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def job_id(self) -> str:
        relevant = {k: v for k, v in self.args.items() if k not in NOT_IN_JOB_ID}
        text = json.dumps([relevant, dict(self.hparams)], sort_keys=True, default=str)
        return hashlib.md5(text.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"args": dict(self.args), "hparams": dict(self.hparams)}

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace, hparam_names: set[str]) -> RunConfig:
        """Validate the flags that need no data, resolve hparams, freeze."""
        raw = {k: v for k, v in vars(namespace).items() if k not in ("func", "command")}
        args = {k: v for k, v in raw.items() if k not in hparam_names}
        flag_overrides = {k: v for k, v in raw.items() if k in hparam_names and v is not None}
        dataset_class = DATASETS.get(args["dataset"])
        algorithm_class = ALGORITHMS.get(args["algorithm"])
        _validate(args, len(dataset_class.ENVIRONMENTS))
        overrides = {**_parse_hparams_json(args["hparams"]), **flag_overrides}
        hparams = resolve_hparams(
            algorithm_class, dataset_class.SMALL_IMAGES, args["hparams_seed"], overrides, trial_seed=args["trial_seed"]
        )
        _validate_hparams(hparams)
        if args["backbone"] is None:
            args["backbone"] = dataset_class.DEFAULT_BACKBONE
        args["test_envs"] = sorted(set(args["test_envs"]))
        if args.get("seed") is None:
            args["seed"] = seed_hash(
                args["dataset"], args["algorithm"], args["test_envs"], args["hparams_seed"], args["trial_seed"]
            )
        if args.get("wandb") is None:
            args["wandb"] = "online" if os.environ.get("WANDB_SWEEP_ID") else "disabled"
        config = cls(MappingProxyType(args), MappingProxyType(hparams))
        if args.get("output_dir") is None:
            args["output_dir"] = str(Path("runs") / config.job_id)
        return config


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


def _validate(args: dict[str, Any], num_envs: int) -> None:
    test_envs = args["test_envs"]
    bad = [i for i in test_envs if not 0 <= i < num_envs]
    if bad:
        raise UserError(
            f"--test_envs {bad[0]} is out of range: {args['dataset']} has domains 0..{num_envs - 1}"
        )
    if len(set(test_envs)) >= num_envs:
        raise UserError(f"--test_envs holds all {num_envs} domains; leave at least one for training")
    positive = {"epochs": 1, "steps_per_epoch": 1, "eval_batch_size": 1, "num_workers": 0}
    for name, minimum in positive.items():
        if args.get(name) is not None and args[name] < minimum:
            raise UserError(f"--{name} must be at least {minimum}, got {args[name]}")
    if not 0.0 < args["holdout_fraction"] < 1.0:
        raise UserError(f"--holdout_fraction must be between 0 and 1, got {args['holdout_fraction']}")
    if args["resolution"] is not None and args["resolution"] < 16:
        raise UserError(f"--resolution must be at least 16, got {args['resolution']}")
    # The schedules validate their own flags (one place for each rule and its message).
    GradSampSchedule(args["gradsamp"], args["gradsamp_period"], args["gradsamp_prob"],
                     args["gradsamp_warmup"], args["gradsamp_allow_consecutive"])
    if args["gradsamp"] != "off" and args["gradsamp_scale"] < 0:
        raise UserError(f"--gradsamp_scale must be non-negative, got {args['gradsamp_scale']}")
    SSPropSchedule(args["ssprop"], args["ssprop_keep"], args["ssprop_keep_min"], args["ssprop_warmup"],
                   args["ssprop_interleave"], args["epochs"])


def _validate_hparams(hparams: dict[str, Any]) -> None:
    if hparams["batch_size"] < 1:
        raise UserError(f"batch_size must be at least 1, got {hparams['batch_size']}")
    if hparams["lr"] <= 0:
        raise UserError(f"lr must be positive, got {hparams['lr']}")
    if hparams["lr_schedule"] not in ("constant", "cosine"):
        raise UserError(f"lr_schedule must be constant or cosine, got {hparams['lr_schedule']!r}")
