"""What a run's model is built on and fed: device, dataset, backbone, decoded splits, transforms.

    inputs = build_inputs(config, weights, build_device(config.system))   # dataset, backbone, data, transforms
    algorithm = build_algorithm(config, inputs)     # the algorithm on the inputs' backbone

Training (``dgsamp.training.build``) and the evaluation of finished runs (``dgsamp ensemble``,
``dgsamp adapt``, from ``RunConfig.from_record``) build them here, so a run and its later
evaluation make their splits, transforms and models the same way.

The caller seeds the global RNGs with the run's seed first (``seed_everything``): the
backbone's initialisation is their first draw, the algorithm's head follows after the data
are loaded, which draw nothing from them, so a model's initialisation is its run's.
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from dgsamp.algorithms.base import Algorithm
from dgsamp.backbones.factory import Backbone, backbone_with_weights
from dgsamp.backbones.featurizers import BottleneckFeaturizer
from dgsamp.backbones.weights import WeightsChoice
from dgsamp.config.run_config import RunConfig
from dgsamp.data.training_data import TrainingData, load_training_data
from dgsamp.data.transforms import Transforms, make_transforms
from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.registry import create_algorithm, create_dataset


@dataclass
class RunInputs:
    """A run's device and data side; ``autocast``: the precision context its forward passes use."""

    device: torch.device
    dataset: MultiDomainDataset
    backbone: Backbone
    data: TrainingData
    transforms: Transforms
    autocast: AbstractContextManager


def build_inputs(config: RunConfig, weights: WeightsChoice, device: torch.device) -> RunInputs:
    """Every domain decoded once, split as DomainBed splits it, on the device ``--data_cache``
    names (auto: the GPU when training on one), beside the backbone holding ``weights``."""
    system, data = config.system, config.data
    dataset = create_dataset(data.dataset, data.data_dir)
    backbone = build_backbone(config, dataset.input_shape, weights)
    transforms = make_transforms(dataset.input_shape, dataset.IS_IMAGE, backbone.mean, backbone.std,
                                 bool(config.hparams["data_augmentation"]), backbone.resolution, data.transforms)
    on_gpu = system.data_cache == "gpu" or (system.data_cache == "auto" and device.type == "cuda")
    training_data = load_training_data(
        dataset, list(data.test_envs), data.holdout_fraction, data.trial_seed, data.task, transforms.stored_side,
        device if on_gpu else torch.device("cpu"), system.num_workers or 1, data.uda_holdout_fraction,
        data.unlabeled_split, None if data.source is None else list(data.source),
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if system.precision == "bf16" else nullcontext()
    return RunInputs(device, dataset, backbone, training_data, transforms, autocast)


def build_backbone(config: RunConfig, input_shape: tuple[int, ...], weights: WeightsChoice) -> Backbone:
    """The run's backbone holding ``weights`` (``WeightsChoice("random")`` where a checkpoint
    replaces them anyway), with the bottleneck the protocol asks for."""
    model = config.model
    backbone = backbone_with_weights(model.backbone, tuple(input_shape), weights, model.resolution, model.freeze_bn)
    if model.bottleneck == "none":
        return backbone
    featurizer = BottleneckFeaturizer(backbone.featurizer, model.bottleneck, model.bottleneck_width)
    return dataclasses.replace(backbone, featurizer=featurizer)


def build_algorithm(config: RunConfig, inputs: RunInputs, backbone: Backbone | None = None) -> Algorithm:
    """The algorithm on ``backbone`` (default: the inputs' own); parameters and optimizers are
    born on the device, in the inputs' memory format."""
    featurizer = (backbone or inputs.backbone).featurizer.to(inputs.device)
    with inputs.device:
        algorithm = create_algorithm(config.model.implementation or config.model.algorithm, featurizer,
                                     inputs.dataset.num_classes, len(inputs.data.train), dict(config.hparams))
    algorithm.per_domain_passes = config.model.featurizer_passes == "per_domain"
    return algorithm.to(memory_format=inputs.transforms.memory_format)
