"""Training length: how many updates each trainer epoch runs, and the step its record carries.

The trainer's *epoch* is the span of updates between two evaluations; training modes
(GradSamp, ssProp) plan per epoch, and every epoch ends with one evaluation and one
results line. A run is either

- counted in epochs (``--epochs E``, ``--steps_per_epoch S``): E epochs of S updates; or
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

from dataclasses import dataclass
from itertools import accumulate

from dgsamp.config.run_config import ScheduleConfig


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
