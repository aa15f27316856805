"""TrainingMode: what the trainer does around the update, as a small object it calls.

A mode is switched on by its own flag (``--gradsamp periodic``, ``--ssprop constant``,
``--ema``), declares its other flags as :class:`Option` s, and is called by the trainer
at fixed points of every epoch::

    mode = ModeClass(options, run)          # options validated; run: epochs, seed, device
    mode.setup(algorithm)                   # once, before training (and before a resume)
    for epoch in 1..E:
        plan = EpochPlan(epoch)             # kind "backprop"
        mode.plan_epoch(plan)               # may set plan.kind (e.g. "gradsamp") and settings
        backprop:  algorithm.update(...); mode.after_step(algorithm, step)   per step
        other:     the mode that set plan.kind runs mode.run_epoch(plan)    no data
        mode.after_epoch(algorithm, plan)
        model = mode.evaluation_model(model)   # averaging modes return their average
        evaluation = accuracy and cross-entropy of every split, of that model
        mode.after_evaluation(plan, evaluation) # SWAD reads the validation loss
        last epoch only:
            model = mode.final_model(model, training_inputs)   # SWAD: window average, BN
            if a mode returned another model, it is evaluated and the record reports it
        record |= mode.record_fields(plan)
    checkpoint["modes"][name] = mode.state_dict()

Hooks a mode may override (each does nothing by default):

- ``setup(algorithm, device)``: once, after the algorithm is built (copies made here
  have the algorithm's structure, device and memory format).
- ``plan_epoch(plan)`` / ``run_epoch(algorithm, plan)``: claim an epoch and run it.
- ``after_step(algorithm, step)``: after every optimizer step of a backprop epoch
  (``step``: the trainer's global step, which non-backprop epochs advance too).
- ``after_epoch(algorithm, plan)``: after every epoch, before evaluation.
- ``evaluation_model(model)``: the model to evaluate this epoch.
- ``after_evaluation(plan, evaluation)``: the epoch's :class:`~dgsamp.training.evaluation.Evaluation`
  (per-split ``accuracies``, mean cross-entropy ``losses``, ``validation_loss``) of the
  model ``evaluation_model`` chose.
- ``final_model(model, training_inputs)``: once, after the last epoch's evaluation;
  return the model that the last results line should report (default: ``model``).
  ``training_inputs`` yields augmented training batches (one minibatch per training
  domain, concatenated, on the device), e.g. to recompute BatchNorm statistics; the
  call is metered as training (energy, seconds; its FLOPs are not counted).
- ``record_fields(plan)``, ``state_dict()``, ``load_state_dict(state)``.

A mode that replaces the evaluated model (``CHOOSES_EVALUATED_MODEL``: the averaging
modes) says which one in its ``evaluated_model`` results field; two such modes cannot
run together.

Everything a mode knows about itself lives in its class: its flags and their checks
(CLI flags, config validation), its results fields (results.jsonl, W&B), and its part of
a run's variant (leaderboard rows and labels). The trainer, the flag parser, the
checkpoint and the leaderboard never name a mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from dgsamp.errors import UserError
from dgsamp.tracking.schema import BACKPROP


class Evaluation(Protocol):
    """What a mode reads of an evaluation (the trainer passes its ``training.evaluation.Evaluation``):
    the accuracies of every split and the training domains' validation loss."""

    accuracies: dict[str, float]

    @property
    def validation_loss(self) -> float: ...


@dataclass(frozen=True)
class Option:
    """One flag of a mode: ``--<name>``.

    ``check(value)`` returns an error reason (without the flag name) or None.
    ``applies(options)`` says whether the flag has an effect given the mode's other
    options; giving it explicitly when it has none is an error (a flag that cannot have
    an effect is bad input).
    """

    default: Any
    help: str
    type: Callable[[str], Any] | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None
    applies: Callable[[Mapping[str, Any]], bool] | None = None
    requires: str = ""  # how to make it apply, for the error message, e.g. "--gradsamp periodic"

    @property
    def value_type(self) -> Callable[[str], Any]:
        return self.type or type(self.default)


@dataclass(frozen=True)
class RunShape:
    """What a mode may know about the run it joins, before anything is built.

    ``total_steps``: the run's updates, when known (an epoch run without
    ``--steps_per_epoch`` learns its length from the data; ``build_run`` validates the
    modes again once it is known)."""

    epochs: int
    seed: int
    total_steps: int | None = None


@dataclass
class EpochPlan:
    """What epoch ``epoch`` (1-based) does: its kind and the settings modes attach to it."""

    epoch: int
    kind: str = BACKPROP
    owner: str | None = None  # the mode that runs a non-backprop epoch
    settings: dict[str, Any] = field(default_factory=dict)

    def take_over(self, mode: str, kind: str) -> None:
        """Make this a ``kind`` epoch run by ``mode`` instead of backprop."""
        if self.owner is not None and self.owner != mode:
            raise UserError(f"epoch {self.epoch} is claimed by both --{self.owner} and --{mode}")
        self.kind, self.owner = kind, mode


class TrainingMode:
    """Base class: every hook does nothing. Subclasses are registered with ``register_mode``.

    Class attributes:
        NAME: the mode's name and switch flag (``--NAME``); set by ``register_mode``.
        OPTIONS: ``{flag name: Option}``; must include ``NAME`` (the switch). The mode is
            on when its switch differs from the switch's default.
        EPOCH_KINDS: the kinds of epoch the mode can plan besides backprop (each gets a
            ``<kind>_epochs`` counter in results).
        CHOOSES_EVALUATED_MODEL: True when ``evaluation_model`` / ``final_model`` may
            return another model than the online one (at most one such mode per run).
    """

    NAME: ClassVar[str] = ""
    OPTIONS: ClassVar[dict[str, Option]] = {}
    EPOCH_KINDS: ClassVar[tuple[str, ...]] = ()
    CHOOSES_EVALUATED_MODEL: ClassVar[bool] = False

    def __init__(self, options: Mapping[str, Any], run: RunShape) -> None:
        self.options = dict(options)
        self.run = run

    # ------------------------------------------------------------------ class level
    @classmethod
    def is_on(cls, options: Mapping[str, Any]) -> bool:
        return options[cls.NAME] != cls.OPTIONS[cls.NAME].default

    @classmethod
    def validate(cls, options: Mapping[str, Any], run: RunShape) -> None:
        """Raise UserError for options that cannot work together in this run (after each
        option passed its own ``check``). Override to add cross-option rules."""

    @classmethod
    def inactive_record_fields(cls, plan: EpochPlan) -> dict[str, Any]:
        """Results fields of a run that does not use the mode (keeps columns stable)."""
        return {}

    @classmethod
    def variant_fields(cls, args: Mapping[str, Any]) -> dict[str, Any]:
        """The options that make a run a different method, from a results line's ``args``.

        Empty when the mode is off (or the args predate it). Options that do not apply
        are left out, so equal methods compare equal.
        """
        options = {name: args.get(name, option.default) for name, option in cls.OPTIONS.items()}
        if options[cls.NAME] is None or not cls.is_on(options):
            return {}
        return {name: value for name, value in options.items()
                if cls.OPTIONS[name].applies is None or cls.OPTIONS[name].applies(options)}

    @classmethod
    def variant_label(cls, fields: Mapping[str, Any]) -> str:
        """The mode's part of a leaderboard label, e.g. ``GradSamp(K=3, layer)``."""
        inner = [f"{name}={_short(value)}" for name, value in fields.items() if name != cls.NAME]
        switch = fields[cls.NAME]
        return f"{cls.NAME}({', '.join(inner if switch is True else [str(switch), *inner])})"

    # ------------------------------------------------------------------ run level
    def setup(self, algorithm: nn.Module, device: torch.device) -> None:
        """Called once after the algorithm is built, before training or resuming."""

    def plan_epoch(self, plan: EpochPlan) -> None:
        """Set the epoch's kind (``plan.take_over``) or its settings."""

    def run_epoch(self, algorithm: nn.Module, plan: EpochPlan) -> None:
        """Run an epoch this mode took over (no data is read)."""
        raise NotImplementedError(f"{type(self).__name__} planned a {plan.kind} epoch it cannot run")

    def after_step(self, algorithm: nn.Module, step: int) -> None:
        """After every optimizer step of a backprop epoch; ``step`` counts from 1."""

    def after_epoch(self, algorithm: nn.Module, plan: EpochPlan) -> None:
        """After every epoch of any kind, before evaluation."""

    def evaluation_model(self, model: nn.Module) -> nn.Module:
        """The model to evaluate (averaging modes return their averaged copy)."""
        return model

    def after_evaluation(self, plan: EpochPlan, evaluation: Evaluation) -> None:
        """After every epoch's evaluation of the model ``evaluation_model`` returned."""

    def final_model(self, model: nn.Module, training_inputs: Iterator[torch.Tensor]) -> nn.Module:
        """Once, after the last epoch's evaluation: the model the last results line reports
        (another one than ``model`` is evaluated again). ``training_inputs`` yields
        augmented training batches x[B, C, H, W] on the device (draw only what you use)."""
        return model

    def record_fields(self, plan: EpochPlan) -> dict[str, Any]:
        """Fields this mode adds to the epoch's results line (and W&B row)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


def check_modes_combine(modes: Sequence[type[TrainingMode]]) -> None:
    """Refuse active modes that cannot run together: two that choose the evaluated model."""
    choosers = [mode.NAME for mode in modes if mode.CHOOSES_EVALUATED_MODEL]
    if len(choosers) > 1:
        raise UserError(f"--{choosers[0]} and --{choosers[1]} each choose the model to evaluate; use one of them")


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
