"""Rebuild what a run evaluates, from its args: data splits, transforms, each member's model.

    setup = EvaluationSetup.from_args(args, hparams, device="auto", data_dir=None, eval_batch_size=None)
    algorithm = setup.build_algorithm(member.args, member.hparams, member.load_state())
    evaluation = setup.evaluate(model)        # every split, as the trainer's evaluation

The splits come from the args exactly as the trainer makes them (dataset, test_envs,
holdout_fraction, trial_seed, task, uda settings; ``dgsamp.data.training_data``), the
transforms from the backbone's resolution and normalisation, and ``--eval_augmentation
train_domains`` (DomainBed's protocol) draws the training domains' augmentation from the
generator the run used at its last evaluation (``seed_hash(seed, "eval_augmentation",
epoch)``), so a one-member ensemble reproduces its member's last line.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from dgsamp.backbones.weights import WeightsChoice
from dgsamp.config.run_config import RunConfig
from dgsamp.data.training_data import TrainingData
from dgsamp.errors import UserError
from dgsamp.training.build import build_device, resolve_device
from dgsamp.training.evaluation import Evaluation, evaluate
from dgsamp.training.inputs import (
    RunInputs,
    build_algorithm,
    build_backbone,
    build_inputs,
)
from dgsamp.utils.seeding import seed_everything, seed_hash

NO_WEIGHTS = WeightsChoice("random")  # a finished run's checkpoint replaces them anyway


@dataclass
class EvaluationSetup:
    """One run's evaluation context: its splits on their device, and how inputs are prepared."""

    inputs: RunInputs  # device, dataset, decoded splits and transforms, as the run built them
    transform: Any
    augment: Any | None  # --eval_augmentation train_domains: the training transform, else None
    augment_seed: int
    batch_size: int
    test_envs: tuple[int, ...]

    @property
    def data(self) -> TrainingData:
        return self.inputs.data

    @property
    def device(self) -> torch.device:
        return self.inputs.device

    @property
    def autocast(self) -> AbstractContextManager:
        return self.inputs.autocast

    @classmethod
    def from_args(cls, args: Mapping[str, Any], hparams: Mapping[str, Any], device: str = "auto",
                  data_dir: str | None = None, eval_batch_size: int | None = None) -> EvaluationSetup:
        """Load the splits of ``args`` (a run's args; ``data_dir`` replaces its own when given),
        built as the run built them (``dgsamp.training.inputs``)."""
        config = RunConfig.from_record(args, hparams)
        config = config.replace("system", device=device, eval_batch_size=int(eval_batch_size or
                                                                             config.system.eval_batch_size))
        if data_dir:
            config = config.replace("data", data_dir=data_dir)
        if config.system.precision == "bf16" and resolve_device(device).type != "cuda":
            raise UserError("the runs trained in bf16, which needs a CUDA device; pass --device cuda")
        inputs = build_inputs(config, NO_WEIGHTS, build_device(config.system))
        transforms = inputs.transforms
        augment = transforms.train if config.data.eval_augmentation == "train_domains" else None
        seed = seed_hash(config.seed, "eval_augmentation", config.schedule.epochs)  # the run's last evaluation
        return cls(inputs, transforms.eval, augment, seed, config.system.eval_batch_size, config.data.test_envs)

    def build_algorithm(self, args: Mapping[str, Any], hparams: Mapping[str, Any],
                        state: Mapping[str, Tensor]) -> nn.Module:
        """The run's algorithm (its args and hparams) holding ``state``, on the device, in eval mode."""
        config = RunConfig.from_record(args, hparams)
        seed_everything(config.seed)  # as the run was seeded before its model was built
        backbone = build_backbone(config, self.inputs.dataset.input_shape, NO_WEIGHTS)
        algorithm = build_algorithm(config, self.inputs, backbone)
        try:
            algorithm.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).splitlines()[1:2] or [str(error)]
            raise UserError(f"saved weights do not fit {args['algorithm']} as built now ({first[0].strip()[:160]}); "
                            "was the algorithm or a plugin changed since training?") from None
        return algorithm.to(self.device, memory_format=self.inputs.transforms.memory_format).eval()

    def evaluate(self, model: nn.Module, splits: tuple[str, ...] | None = None) -> Evaluation:
        """Accuracy and cross-entropy of ``model.predict`` on every split (or on ``splits``)."""
        chosen = {name: data for name, data in self.data.eval_splits.items() if splits is None or name in splits}
        split_transforms = {}
        if self.augment is not None:  # one generator for all splits, fresh for each evaluation (as the trainer)
            augment = partial(self.augment, generator=torch.Generator(self.device).manual_seed(self.augment_seed))
            split_transforms = {f"env{env}_{part}": augment
                                for env in self.data.splits.train_envs for part in ("in", "out")}
        return evaluate(model, chosen, self.transform, self.batch_size, self.autocast, self.test_envs,
                        split_transforms)

    @property
    def validation_splits(self) -> tuple[str, ...]:
        """The training domains' out-splits (training-domain validation)."""
        return tuple(f"env{env}_out" for env in self.data.splits.train_envs)
