"""Flags -> RunConfig, in one visible order; every value is validated where it is resolved.

    1. preset              --protocol names it (``dgsamp.config.presets``)
    2. hparams registry    the preset says which one draws the hparams
    3. hparams             defaults or seeded draws, then --hparams JSON, then hparam flags
    4. protocol settings   the preset's values for this dataset and algorithm
    5. explicit flags      win over the preset (``dgsamp.config.protocol``)

``dgsamp train``, ``dgsamp sweep launch`` (every job, before any starts) and the tests all
come through :func:`resolve_run_config`. A training mode's options are checked by the rules
the mode declares (``dgsamp.config.mode_options``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dgsamp.config.domains import resolve_domains
from dgsamp.config.flags import all_hparam_specs, mode_option_names
from dgsamp.config.mode_options import resolve_mode_options
from dgsamp.config.presets import get_protocol
from dgsamp.config.protocol import resolve_protocol
from dgsamp.config.run_config import RunConfig
from dgsamp.errors import UserError
from dgsamp.hparams import check_hparams, coerce, hparam_specs, resolve_hparams
from dgsamp.modes.base import RunShape, check_modes_combine
from dgsamp.registry import ALGORITHMS, DATASETS, MODES
from dgsamp.utils.seeding import seed_hash

AT_LEAST = {"epochs": 1, "steps_per_epoch": 1, "steps": 1, "checkpoint_freq": 1, "eval_batch_size": 1,
            "num_workers": 0, "resolution": 16}


def resolve_run_config(namespace: argparse.Namespace) -> RunConfig:
    """Validate parsed ``dgsamp train`` flags (unset ones are None), fill defaults, freeze."""
    raw = {k: v for k, v in vars(namespace).items() if k not in ("func", "command")}
    hparam_names, option_names = set(all_hparam_specs()), mode_option_names()
    args = {k: v for k, v in raw.items() if k not in hparam_names and k not in option_names}
    dataset_class = DATASETS.get(args["dataset"])
    ALGORITHMS.get(args["algorithm"])  # an unknown name: one line listing the known ones
    _check_run_flags(args, dataset_class)
    from_json = _parse_hparams_json(args["hparams"])
    domains = resolve_domains(dataset_class, args["test_envs"], args["source"], args["target"], args["task"])
    args.update(test_envs=list(domains.test_envs), task=domains.task)
    flags = {k: v for k, v in raw.items() if k in hparam_names and v is not None}

    protocol = get_protocol(args["protocol"])  # 1: the preset, for this dataset and algorithm
    preset = protocol.resolve(dataset_class, args["algorithm"])
    implementation = preset["implementation"] or args["algorithm"]
    algorithm_class = ALGORITHMS.get(implementation)
    if algorithm_class.NEEDS_TARGET and domains.task != "domain_adaptation":
        raise UserError(f"{args['algorithm']} adapts to unlabeled target data: give --source and --target "
                        "(or --task domain_adaptation with --test_envs)")
    specs = hparam_specs(algorithm_class)
    # 2 and 3: the registry's defaults or draws, the preset's hparams, --hparams JSON, hparam flags;
    # a bad JSON value is refused even where a flag replaces it
    check_hparams({k: coerce(k, v, specs[k].type) for k, v in from_json.items() if k in specs}, specs)
    fixed = {k: v for k, v in preset["hparams"].items() if k in specs}
    hparams = resolve_hparams(
        algorithm_class, dataset_class.SMALL_IMAGES, args["hparams_seed"], {**fixed, **from_json, **flags},
        trial_seed=args["trial_seed"], dataset=args["dataset"], registry=preset["hparams_registry"],
        algorithm=args["algorithm"], given=set(from_json) | set(flags),
    )
    settings = resolve_protocol(protocol.name, preset, args, dataset_class, algorithm_class, hparams)  # 4, 5

    seed = args["seed"]
    if seed is None:  # as DomainBed's sweeps derive it
        seed = seed_hash(args["dataset"], args["algorithm"], list(domains.test_envs), args["hparams_seed"],
                         args["trial_seed"])
    shape = RunShape(settings.epochs, seed)  # the length in updates is checked again by build_run
    modes = {name: resolve_mode_options(MODES.get(name), raw, shape) for name in MODES.in_registration_order()}
    values = {
        **args, **vars(settings), **vars(domains), "seed": seed, "hparams_json": args["hparams"],
        "output_dir": args["output_dir"] or "", "plugin": tuple(args["plugin"]),
        "wandb": args["wandb"] or ("online" if os.environ.get("WANDB_SWEEP_ID") else "disabled"),
        "wandb_tags": tuple(args["wandb_tags"]),
    }
    config = RunConfig.from_parts(values, hparams, modes)
    check_modes_combine([MODES.get(name) for name in config.active_modes])
    if not config.tracking.output_dir:
        config = config.replace("tracking", output_dir=str(Path("runs") / config.job_id))
    return config


def parse_run_config(argv: Sequence[str]) -> RunConfig:
    """``dgsamp train`` argv -> RunConfig (plugins named by ``--plugin`` are loaded first)."""
    from dgsamp.config.parser import build_train_parser, load_plugins

    load_plugins(argv)
    return resolve_run_config(build_train_parser(argv).parse_args(list(argv)))


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


def _check_run_flags(args: Mapping[str, Any], dataset_class: type) -> None:
    for name, minimum in AT_LEAST.items():
        if args.get(name) is not None and args[name] < minimum:
            raise UserError(f"--{name} must be at least {minimum}, got {args[name]}")
    if not 0.0 < args["holdout_fraction"] < 1.0:
        raise UserError(f"--holdout_fraction must be between 0 and 1, got {args['holdout_fraction']}")
    if args["data_dir"] is not None and not dataset_class.READS_DATA_DIR:
        raise UserError(f"--data_dir has no effect with --dataset {args['dataset']}: its images ship with dgsamp; "
                        "drop --data_dir (or use --dataset PACS for the full PACS in --data_dir)")
