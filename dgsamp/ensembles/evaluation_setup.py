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
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from dgsamp.backbones.factory import create_backbone
from dgsamp.data.augment import make_batch_transform
from dgsamp.data.training_data import TrainingData, load_training_data
from dgsamp.errors import UserError
from dgsamp.registry import create_algorithm, create_dataset
from dgsamp.training.device import configure_backends, preferred_memory_format, resolve_device
from dgsamp.training.evaluation import Evaluation, evaluate
from dgsamp.utils.seeding import seed_hash


@dataclass
class EvaluationSetup:
    """One run's evaluation context: its splits on their device, and how inputs are prepared."""

    dataset: Any
    data: TrainingData
    device: torch.device
    transform: Any
    augment: Any | None  # --eval_augmentation train_domains: the training transform, else None
    augment_seed: int
    autocast: AbstractContextManager
    batch_size: int
    test_envs: tuple[int, ...]
    memory_format: torch.memory_format

    @classmethod
    def from_args(cls, args: Mapping[str, Any], hparams: Mapping[str, Any], device: str = "auto",
                  data_dir: str | None = None, eval_batch_size: int | None = None) -> EvaluationSetup:
        """Load the splits of ``args`` (a run's args; ``data_dir`` replaces its own when given)."""
        target = resolve_device(device)
        if args.get("precision") == "bf16" and target.type != "cuda":
            raise UserError("the runs trained in bf16, which needs a CUDA device; pass --device cuda")
        configure_backends(target, bool(args.get("deterministic")))
        dataset = create_dataset(args["dataset"], data_dir or args.get("data_dir"))
        backbone = create_backbone(args["backbone"], dataset.input_shape, "none", None, args.get("resolution"),
                                   bool(args.get("freeze_bn")))
        cache = args.get("data_cache", "auto")
        on_gpu = cache == "gpu" or (cache == "auto" and target.type == "cuda")
        test_envs = tuple(int(env) for env in args["test_envs"])
        data = load_training_data(
            dataset, list(test_envs), float(args["holdout_fraction"]), int(args["trial_seed"]),
            str(args.get("task") or "domain_generalization"), backbone.resolution if dataset.IS_IMAGE else None,
            target if on_gpu else torch.device("cpu"), int(args.get("num_workers") or 1),
            float(args.get("uda_holdout_fraction") or 0.0), str(args.get("unlabeled_split") or "test_in"),
        )
        memory_format = preferred_memory_format(tuple(dataset.input_shape))
        mean, std, side = backbone.mean, backbone.std, backbone.resolution
        transform = make_batch_transform(dataset.IS_IMAGE, mean, std, False, side, memory_format)
        augment = None
        if args.get("eval_augmentation") == "train_domains":
            augment = make_batch_transform(dataset.IS_IMAGE, mean, std, bool(hparams.get("data_augmentation")),
                                           side, memory_format)
        seed = seed_hash(args.get("seed"), "eval_augmentation", int(args["epochs"]))  # the run's last evaluation
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.get("precision") == "bf16" else nullcontext()
        return cls(dataset, data, target, transform, augment, seed, autocast,
                   int(eval_batch_size or args.get("eval_batch_size") or 256), test_envs, memory_format)

    def build_algorithm(self, args: Mapping[str, Any], hparams: Mapping[str, Any],
                        state: Mapping[str, Tensor]) -> nn.Module:
        """The run's algorithm (its args and hparams) holding ``state``, on the device, in eval mode."""
        backbone = create_backbone(args["backbone"], self.dataset.input_shape, "none", None, args.get("resolution"),
                                   bool(args.get("freeze_bn")))
        with self.device:
            algorithm = create_algorithm(args["algorithm"], backbone.featurizer.to(self.device),
                                         self.dataset.num_classes, len(self.data.train), dict(hparams))
        try:
            algorithm.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).splitlines()[1:2] or [str(error)]
            raise UserError(f"saved weights do not fit {args['algorithm']} as built now ({first[0].strip()[:160]}); "
                            "was the algorithm or a plugin changed since training?") from None
        return algorithm.to(self.device, memory_format=self.memory_format).eval()

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
