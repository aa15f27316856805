"""Which epochs run backprop and which are GradSamp (sampled) epochs.

The schedule is a pure function of its arguments and the 1-based epoch number, so a run
resumed from a checkpoint replays exactly the same plan.

- ``off``: every epoch is backprop.
- ``periodic``: epoch ``e`` is sampled when ``e > warmup`` and ``e % period == 0``
  (K = 3, W = 2 over 10 epochs: 3, 6 and 9 are sampled).
- ``random``: epoch ``e > warmup`` is sampled when ``u(seed, e) < prob``, where
  ``u = seed_hash(seed, "gradsamp", e) / 2**31`` is a uniform draw fixed by the seed.

Unless ``allow_consecutive``, an epoch right after a sampled epoch is always backprop
(for ``random`` the sampled fraction then tends to ``prob / (1 + prob)``).
The first ``warmup`` epochs (at least 2) are backprop: a sampled step needs the
parameters of two earlier epochs.
"""

from __future__ import annotations

from typing import Literal

from dgsamp.errors import UserError
from dgsamp.utils.seeding import seed_hash

EpochKind = Literal["backprop", "gradsamp"]
GRADSAMP_MODES = ("off", "periodic", "random")
DEFAULT_WARMUP = 2


class GradSampSchedule:
    """The plan of backprop and GradSamp epochs; ``kind(epoch)`` for 1-based epochs."""

    def __init__(
        self,
        mode: str = "off",
        period: int = 3,
        prob: float = 0.3,
        warmup: int = DEFAULT_WARMUP,
        allow_consecutive: bool = False,
        seed: int = 0,
    ) -> None:
        self.mode = mode
        self.period = period
        self.prob = prob
        self.warmup = warmup
        self.allow_consecutive = allow_consecutive
        self.seed = seed
        self._random_plan: list[bool] = []  # memo for mode 'random': index e-1 -> sampled
        self.validate()

    def validate(self) -> None:
        """Raise UserError for an impossible schedule; every message names the flag to fix."""
        if self.mode not in GRADSAMP_MODES:
            raise UserError(
                f"--gradsamp '{self.mode}' is unknown; choose one of {', '.join(GRADSAMP_MODES)}"
            )
        if self.mode == "off":
            return
        if int(self.warmup) != self.warmup or self.warmup < 2:
            raise UserError(
                f"--gradsamp_warmup must be an integer >= 2 (got {self.warmup}): a GradSamp "
                "epoch needs the parameters of the two epochs before it"
            )
        if self.mode == "periodic" and (int(self.period) != self.period or self.period < 2):
            raise UserError(
                f"--gradsamp_period must be an integer >= 2 (got {self.period}): with 1 every "
                "epoch would be sampled and nothing would be trained"
            )
        if self.mode == "random" and not 0.0 <= float(self.prob) < 1.0:
            raise UserError(f"--gradsamp_prob must be in [0, 1) (got {self.prob})")

    def kind(self, epoch: int) -> EpochKind:
        """``"gradsamp"`` if 1-based ``epoch`` is a sampled epoch, else ``"backprop"``."""
        return "gradsamp" if self.is_sampled(epoch) else "backprop"

    def is_sampled(self, epoch: int) -> bool:
        if epoch < 1:
            raise ValueError(f"epochs are 1-based, got {epoch}")
        if self.mode == "off" or epoch <= self.warmup:
            return False
        if self.mode == "periodic":
            return epoch % self.period == 0  # period >= 2: never two in a row
        return self._random_sampled(epoch)

    def _random_draw(self, epoch: int) -> float:
        """A uniform number in [0, 1) fixed by (seed, epoch)."""
        return seed_hash(self.seed, "gradsamp", epoch) / 2**31

    def _random_sampled(self, epoch: int) -> bool:
        plan = self._random_plan
        while len(plan) < epoch:
            e = len(plan) + 1
            sampled = e > self.warmup and self._random_draw(e) < self.prob
            if sampled and not self.allow_consecutive and plan and plan[-1]:
                sampled = False
            plan.append(sampled)
        return plan[epoch - 1]

    def plan(self, epochs: int) -> list[EpochKind]:
        """The kinds of epochs 1..epochs."""
        return [self.kind(e) for e in range(1, epochs + 1)]

    def counts(self, epochs: int) -> tuple[int, int]:
        """(backprop epochs, sampled epochs) among epochs 1..epochs."""
        sampled = sum(self.is_sampled(e) for e in range(1, epochs + 1))
        return epochs - sampled, sampled

    def __repr__(self) -> str:
        return (
            f"GradSampSchedule(mode={self.mode!r}, period={self.period}, prob={self.prob}, "
            f"warmup={self.warmup}, allow_consecutive={self.allow_consecutive}, seed={self.seed})"
        )
