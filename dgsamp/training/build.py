"""Build a run from its RunConfig: device, data, backbone, algorithm, transforms, modes, run dir.

    run = build_run(config, existing)     # everything the trainer's loop needs
    Trainer(run).run()

The pieces are also built one at a time (``build_device``, ``build_data``, ...), by the
evaluation of finished runs (``dgsamp ensemble``) from ``RunConfig.from_record``, so a run
and its later evaluation make their splits, transforms and models the same way.

Everything that can refuse the run happens before the run directory is touched. The order
of the steps is part of the numbers: the global RNG is seeded right before the backbone
and the algorithm are initialised.
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dgsamp import __version__
from dgsamp.algorithms.base import Algorithm
from dgsamp.backbones.bottleneck import BottleneckFeaturizer
from dgsamp.backbones.factory import Backbone, create_backbone
from dgsamp.config.run_config import RunConfig
from dgsamp.config.schedule import Schedule
from dgsamp.data.augment import make_batch_transform
from dgsamp.data.augment_tllib import decode_side
from dgsamp.data.training_data import DomainBatches, TrainingData, load_training_data
from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.errors import UserError
from dgsamp.metering.energy import EnergyMeter
from dgsamp.modes.base import RunShape, TrainingMode
from dgsamp.registry import MODES, create_algorithm, create_dataset
from dgsamp.tracking.wandb_sink import WandbSink
from dgsamp.training.device import configure_backends, preferred_memory_format, resolve_device
from dgsamp.training.memory import check_batch_fits
from dgsamp.training.run_dir import ExistingRun, prepare_run_dir
from dgsamp.utils.seeding import seed_everything, seed_hash


@dataclass
class Transforms:
    """uint8 batch -> model input: ``train`` augments (when the hparams say so), ``eval`` does not."""

    train: Any
    eval: Any
    memory_format: torch.memory_format


@dataclass
class BuiltRun:
    """What one run trains with; the trainer owns the loop, the evaluation points and the state."""

    config: RunConfig
    existing: ExistingRun
    device: torch.device
    meter: EnergyMeter
    dataset: MultiDomainDataset
    backbone: Backbone
    data: TrainingData
    algorithm: Algorithm
    transforms: Transforms
    schedule: Schedule
    generators: dict[str, torch.Generator]
    train_batches: list[DomainBatches]
    unlabeled_batches: list[DomainBatches]
    modes: list[TrainingMode]
    autocast: AbstractContextManager
    run_dir: Path
    wandb: WandbSink


def build_device(config: RunConfig) -> torch.device:
    """The device, checked against the precision, with its backends configured."""
    device = resolve_device(config.system.device)
    if config.system.precision == "bf16" and device.type != "cuda":
        raise UserError("--precision bf16 needs a CUDA device; use --precision fp32 on the CPU")
    configure_backends(device, config.system.deterministic)
    return device


def build_autocast(config: RunConfig) -> AbstractContextManager:
    return torch.autocast("cuda", dtype=torch.bfloat16) if config.system.precision == "bf16" else nullcontext()


def build_backbone(config: RunConfig, dataset: MultiDomainDataset, pretrained: str | None = None) -> Backbone:
    """The run's backbone; ``pretrained="none"`` skips weights that a checkpoint replaces anyway."""
    model = config.model
    if pretrained is None:
        pretrained, pretrained_file = model.pretrained, model.pretrained_file
    else:
        pretrained_file = None
    backbone = create_backbone(model.backbone, dataset.input_shape, pretrained, pretrained_file, model.resolution,
                               model.freeze_bn)
    if model.bottleneck == "none":
        return backbone
    featurizer = BottleneckFeaturizer(backbone.featurizer, model.bottleneck, model.bottleneck_width)
    return dataclasses.replace(backbone, featurizer=featurizer)


def data_device(config: RunConfig, device: torch.device) -> torch.device:
    """Where the decoded splits live: the GPU when ``--data_cache`` says so (auto: when training on one)."""
    cache = config.system.data_cache
    return device if cache == "gpu" or (cache == "auto" and device.type == "cuda") else torch.device("cpu")


def build_data(config: RunConfig, dataset: MultiDomainDataset, backbone: Backbone,
               device: torch.device) -> TrainingData:
    """Every domain decoded once and split as DomainBed splits it (``dgsamp.data.training_data``)."""
    data = config.data
    side = decode_side(backbone.resolution) if data.transforms == "tllib" else backbone.resolution
    return load_training_data(
        dataset, list(data.test_envs), data.holdout_fraction, data.trial_seed, data.task,
        side if dataset.IS_IMAGE else None, data_device(config, device),
        config.system.num_workers or 1, data.uda_holdout_fraction, data.unlabeled_split,
        None if data.source is None else list(data.source),
    )


def build_algorithm(config: RunConfig, dataset: MultiDomainDataset, backbone: Backbone, num_domains: int,
                    device: torch.device, memory_format: torch.memory_format) -> Algorithm:
    """The algorithm on ``backbone``; parameters and optimizers are born on the device."""
    with device:
        algorithm = create_algorithm(config.model.implementation or config.model.algorithm,
                                     backbone.featurizer.to(device), dataset.num_classes, num_domains,
                                     dict(config.hparams))
    algorithm.per_domain_passes = config.model.featurizer_passes == "per_domain"
    return algorithm.to(memory_format=memory_format)


def build_transforms(config: RunConfig, dataset: MultiDomainDataset, backbone: Backbone) -> Transforms:
    memory_format = preferred_memory_format(tuple(dataset.input_shape))
    augment = bool(config.hparams["data_augmentation"])
    mean, std, side = backbone.mean, backbone.std, backbone.resolution
    return Transforms(
        train=make_batch_transform(dataset.IS_IMAGE, mean, std, augment, side, memory_format, config.data.transforms),
        eval=make_batch_transform(dataset.IS_IMAGE, mean, std, False, side, memory_format, config.data.transforms),
        memory_format=memory_format,
    )


def build_run(config: RunConfig, existing: ExistingRun) -> BuiltRun:
    """Everything a run trains with; ``existing``: what ``open_run_dir`` found in the run
    directory, which is created last (W&B after it)."""
    device = build_device(config)
    meter = EnergyMeter(config.tracking.energy, [device])
    seed_everything(config.seed)
    dataset = create_dataset(config.data.dataset, config.data.data_dir)
    backbone = build_backbone(config, dataset)
    data = build_data(config, dataset, backbone, device)
    transforms = build_transforms(config, dataset, backbone)
    algorithm = build_algorithm(config, dataset, backbone, len(data.train), device, transforms.memory_format)
    if config.system.compile:
        algorithm.featurizer.compile()

    batch_size = int(config.hparams["batch_size"])
    schedule = config.schedule.updates(data.steps_per_epoch(batch_size))
    # Batches are drawn where the data lives; augmentation runs on the device.
    generators = {
        "batches": torch.Generator(data.train[0].x.device).manual_seed(seed_hash(config.seed, "batches")),
        "augment": torch.Generator(device).manual_seed(seed_hash(config.seed, "augment")),
    }
    train_batches = [DomainBatches(d, batch_size, generators["batches"]) for d in data.train]
    unlabeled = data.unlabeled if algorithm.ADAPTS_TO_UNLABELED else []  # the others are not fed target data
    unlabeled_batches = [DomainBatches(d, batch_size, generators["batches"]) for d in unlabeled]
    example = transforms.eval(data.train[0].x[:1].to(device), None)[0]
    check_batch_fits(algorithm.featurizer, example, batch_size, len(train_batches) + len(unlabeled_batches), device)

    shape = RunShape(config.schedule.epochs, config.seed, schedule.total_steps)
    for name in config.active_modes:  # again, now that the run's length in updates is known
        MODES.get(name).validate(config.modes[name], shape)
    modes = [MODES.get(name)(config.modes[name], shape) for name in config.active_modes]
    for mode in modes:
        mode.setup(algorithm, device)
    run_dir = prepare_run_dir(config.tracking.output_dir, config.tracking.no_resume)
    track = config.tracking
    wandb = WandbSink(track.wandb, track.wandb_project, track.wandb_entity, track.wandb_group, list(track.wandb_tags),
                      {**config.to_dict(), "dgsamp_version": __version__, "job_id": config.job_id,
                       "weights": backbone.weights}, run_dir, config.job_id)
    return BuiltRun(config, existing, device, meter, dataset, backbone, data, algorithm, transforms, schedule,
                    generators, train_batches, unlabeled_batches, modes, build_autocast(config), run_dir, wandb)
