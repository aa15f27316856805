"""The protocol settings of one run: the ``--protocol`` preset, then the flags given explicitly.

Every flag a preset sets parses to None when it is not given, so "given" is "not None".
The result holds *effective* values: a setting that cannot act in this run (frozen
BatchNorm on the MNIST CNN, per-domain passes for ERM, augmented evaluation of a tensor
dataset) is recorded as what happens (False, ``joint``, ``none``); the same setting given
explicitly is refused with one line (a flag without effect is bad input).

Training length (docs/protocol.md), settled here and turned into the run's ``Schedule``:

- ``--steps`` (or a domainbed preset without ``--epochs``): step mode; ``--checkpoint_freq``
  defaults to the dataset's ``CHECKPOINT_FREQ``; ``--steps_per_epoch`` has no effect;
- ``--epochs`` (or ``--protocol dgsamp`` without ``--steps``): epoch mode;
  ``--checkpoint_freq`` has no effect. ``--steps`` and ``--epochs`` together are refused.

The trainer's *epoch* is the span of updates between two evaluations; training modes
(GradSamp, ssProp) plan per epoch, and every epoch ends with one evaluation and one
results line. A run is either

- counted in epochs (``--epochs E``, ``--steps_per_epoch S``): E epochs of S updates (S
  defaults to one pass over the largest training domain, known once the data is loaded); or
- counted in steps as DomainBed counts them (``--steps N``, ``--checkpoint_freq F``):
  DomainBed's loop ``for step in range(N)`` evaluates after the update of step ``s`` when
  ``s % F == 0`` (and, since DomainBed commit ed96f0f, when ``s == N - 1``). Those
  evaluation points ``p_1 < p_2 < ... < p_E`` become the epochs: epoch 1 holds the single
  update of step 0, epoch k the ``p_k - p_{k-1}`` updates after it (the last one may be
  shorter than F). Without the last-step rule, updates after ``p_E`` would never be
  evaluated, and the run ends at ``p_E`` (DomainBed 7df6f06 trains them but records nothing).

Either way a record's ``step`` is DomainBed's: the 0-based index of the last update before
the evaluation, i.e. the number of updates so far minus one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from dgsamp.config.run_config import ScheduleConfig
from dgsamp.errors import UserError
from dgsamp.registry import BACKBONES

PER_DOMAIN, JOINT = "per_domain", "joint"
TRAIN_DOMAINS, NO_AUGMENTATION = "train_domains", "none"
UDA, TEST_IN = "uda", "test_in"


@dataclass(frozen=True)
class ProtocolSettings:
    """The effective protocol settings (RunConfig fields of the same names)."""

    protocol: str
    steps: int | None
    checkpoint_freq: int | None
    evaluate_last_step: bool
    epochs: int  # step mode: the number of evaluation points (the trainer's epochs)
    steps_per_epoch: int | None
    backbone: str
    freeze_bn: bool
    featurizer_passes: str
    eval_augmentation: str
    uda_holdout_fraction: float
    unlabeled_split: str
    bottleneck: str
    bottleneck_width: int
    implementation: str | None
    transforms: str


def resolve_protocol(
    name: str, preset: Mapping[str, Any], args: Mapping[str, Any], dataset_class: type, algorithm_class: type,
    hparams: Mapping[str, Any],
) -> ProtocolSettings:
    """The preset's values ``preset`` (resolved for this dataset and algorithm), then the
    explicit flags; check."""
    given = {key: args.get(key) for key in preset if args.get(key) is not None}
    backbone = given.get("backbone", preset["backbone"])
    uda = _uda_holdout_fraction(args, preset["unlabeled_split"])
    bottleneck, width = _bottleneck(given, preset)
    freeze_bn = _freeze_bn(given, preset, backbone)
    featurizer_passes = _featurizer_passes(given, preset, algorithm_class)
    eval_augmentation = _eval_augmentation(given, preset, dataset_class, hparams)
    transforms = _transforms(given, preset, dataset_class)
    steps, freq, epochs = _training_length(args, preset, given, dataset_class)
    return ProtocolSettings(
        protocol=name, steps=steps, checkpoint_freq=freq,
        evaluate_last_step=bool(preset["evaluate_last_step"]), epochs=epochs,
        steps_per_epoch=None if steps is not None else given.get("steps_per_epoch", preset["steps_per_epoch"]),
        backbone=backbone, bottleneck=bottleneck, bottleneck_width=width, implementation=preset["implementation"],
        transforms=transforms,
        freeze_bn=freeze_bn, featurizer_passes=featurizer_passes, eval_augmentation=eval_augmentation,
        uda_holdout_fraction=uda, unlabeled_split=preset["unlabeled_split"],
    )


def _training_length(
    args: Mapping[str, Any], preset: Mapping[str, Any], given: Mapping[str, Any], dataset_class: type
) -> tuple[int | None, int | None, int]:
    """(steps, checkpoint_freq, epochs): step mode gives steps and freq, epoch mode epochs."""
    if "steps" in given and "epochs" in given:
        raise UserError("--steps and --epochs both set the training length; give one of them")
    step_mode = "steps" in given or ("epochs" not in given and preset["steps"] is not None)
    if step_mode:
        if args.get("steps_per_epoch") is not None:
            raise UserError("--steps_per_epoch has no effect when training is counted in steps; "
                            "drop it or count in epochs with --epochs")
        steps = int(given.get("steps", preset["steps"]))
        freq = given.get("checkpoint_freq", preset["checkpoint_freq"]) or dataset_class.CHECKPOINT_FREQ
        for name, value in (("steps", steps), ("checkpoint_freq", freq)):
            if value < 1:
                raise UserError(f"--{name} must be at least 1, got {value}")
        return steps, int(freq), len(evaluation_steps(steps, int(freq), bool(preset["evaluate_last_step"])))
    if "checkpoint_freq" in given:
        raise UserError("--checkpoint_freq has no effect when training is counted in epochs (evaluation "
                        "after every epoch); drop it or count in steps with --steps")
    epochs = int(given.get("epochs", preset["epochs"]))
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    return None, None, epochs



@dataclass(frozen=True)
class Schedule:
    """``epoch_steps[k]``: the updates of epoch ``k + 1`` (every entry >= 1)."""

    epoch_steps: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.epoch_steps or min(self.epoch_steps) < 1:
            raise ValueError(f"every epoch needs at least one update, got {self.epoch_steps}")

    @property
    def epochs(self) -> int:
        return len(self.epoch_steps)

    @property
    def total_steps(self) -> int:
        """Updates of the whole run."""
        return sum(self.epoch_steps)

    def steps_of(self, epoch: int) -> int:
        """Updates of epoch ``epoch`` (1-based)."""
        return self.epoch_steps[epoch - 1]

    def record_steps(self) -> list[int]:
        """The ``step`` of each epoch's record: cumulative updates minus one."""
        return [done - 1 for done in accumulate(self.epoch_steps)]


def evaluation_steps(n_steps: int, checkpoint_freq: int, evaluate_last_step: bool) -> list[int]:
    """DomainBed's evaluation points in ``range(n_steps)``: ``s % checkpoint_freq == 0``,
    plus ``n_steps - 1`` under the last-step rule."""
    points = list(range(0, n_steps, checkpoint_freq))
    if evaluate_last_step and points[-1] != n_steps - 1:
        points.append(n_steps - 1)
    return points


def step_schedule(n_steps: int, checkpoint_freq: int, evaluate_last_step: bool) -> Schedule:
    """Epochs between DomainBed's evaluation points (see the module docstring)."""
    points = evaluation_steps(n_steps, checkpoint_freq, evaluate_last_step)
    return Schedule(tuple(point - previous for previous, point in zip([-1, *points], points)))


def epoch_schedule(epochs: int, steps_per_epoch: int) -> Schedule:
    """``epochs`` epochs of ``steps_per_epoch`` updates."""
    return Schedule((steps_per_epoch,) * epochs)


def run_schedule(schedule: ScheduleConfig, pass_steps: int) -> Schedule:
    """Updates per trainer epoch of a run; ``pass_steps``: the updates of one pass over the
    largest training domain, the epoch length when counting in epochs without ``--steps_per_epoch``."""
    if schedule.steps is not None:
        return step_schedule(schedule.steps, int(schedule.checkpoint_freq or 1), schedule.evaluate_last_step)
    return epoch_schedule(schedule.epochs, schedule.steps_per_epoch or pass_steps)


def _bottleneck(given: Mapping[str, Any], preset: Mapping[str, Any]) -> tuple[str, int]:
    """(kind, width): ``--bottleneck_width`` acts only with a bottleneck; 256 when one is asked for
    without a width."""
    kind = given.get("bottleneck", preset["bottleneck"])
    if kind == "none":
        if "bottleneck_width" in given:
            raise UserError("--bottleneck_width has no effect without a bottleneck; drop it or add --bottleneck bn_relu")
        return kind, 0
    width = int(given.get("bottleneck_width", preset["bottleneck_width"] or 256))
    if width < 1:
        raise UserError(f"--bottleneck_width must be at least 1, got {width}")
    return kind, width


def _transforms(given: Mapping[str, Any], preset: Mapping[str, Any], dataset_class: type) -> str:
    """Image transforms act on image datasets only (tensor datasets are never transformed)."""
    if dataset_class.IS_IMAGE:
        return str(given.get("transforms", preset["transforms"]))
    if "transforms" in given:
        raise UserError(f"--transforms has no effect on {dataset_class.__name__}, whose inputs are tensors; drop it")
    return "domainbed"


def _freeze_bn(given: Mapping[str, Any], preset: Mapping[str, Any], backbone: str) -> bool:
    """Frozen BatchNorm acts on timm backbones only (registered ones, e.g. the MNIST CNN, use
    their own normalisation)."""
    if backbone not in BACKBONES:
        return bool(given.get("freeze_bn", preset["freeze_bn"]))
    if given.get("freeze_bn"):
        raise UserError(f"--freeze_bn has no effect on backbone {backbone} (dgsamp freezes the BatchNorm "
                        "of timm backbones); drop it")
    return False


def _featurizer_passes(given: Mapping[str, Any], preset: Mapping[str, Any], algorithm_class: type) -> str:
    value = given.get("featurizer_passes", preset["featurizer_passes"])
    if value == PER_DOMAIN and not getattr(algorithm_class, "PER_DOMAIN_PASSES", False):
        if "featurizer_passes" in given:
            raise UserError(f"--featurizer_passes per_domain has no effect on {algorithm_class.__name__}, "
                            "which passes all domains at once as DomainBed does; drop it")
        return JOINT
    return str(value)


def _eval_augmentation(
    given: Mapping[str, Any], preset: Mapping[str, Any], dataset_class: type, hparams: Mapping[str, Any]
) -> str:
    value = given.get("eval_augmentation", preset["eval_augmentation"])
    if value == TRAIN_DOMAINS and not (dataset_class.IS_IMAGE and hparams.get("data_augmentation")):
        if "eval_augmentation" in given:
            why = "augmentation is off (data_augmentation false)" if dataset_class.IS_IMAGE \
                else f"{dataset_class.__name__} is not augmented"
            raise UserError(f"--eval_augmentation train_domains has no effect: {why}; drop it")
        return NO_AUGMENTATION
    return str(value)


def _uda_holdout_fraction(args: Mapping[str, Any], unlabeled_split: str) -> float:
    value = args.get("uda_holdout_fraction")
    adapting = args.get("task") == "domain_adaptation"
    if value is not None and not 0.0 <= value < 1.0:
        raise UserError(f"--uda_holdout_fraction must be in [0, 1), got {value}")
    if unlabeled_split == UDA and adapting and not value:
        raise UserError(f"--protocol {args['protocol']} takes domain adaptation's unlabeled data from "
                        "DomainBed's uda split: give --uda_holdout_fraction > 0 (e.g. 0.2)")
    if unlabeled_split == TEST_IN and value is not None and not adapting:
        raise UserError("--uda_holdout_fraction has no effect without --task domain_adaptation under "
                        "--protocol dgsamp; drop it")
    return float(value or 0.0)
