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

from collections.abc import Callable
from typing import Any, Literal

from dgsamp.errors import UserError
from dgsamp.utils.seeding import seed_hash

EpochKind = Literal["backprop", "gradsamp"]
GRADSAMP_MODES = ("off", "periodic", "random")
DEFAULT_WARMUP = 2


def _integer_at_least(minimum: int, why: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if int(value) != value or value < minimum:
            return f"must be an integer >= {minimum} (got {value}){why}"
        return None

    return check


def _probability(value: Any) -> str | None:
    return None if 0.0 <= float(value) < 1.0 else f"must be in [0, 1) (got {value})"


OPTION_RULES: dict[str, Callable[[Any], str | None]] = {
    "gradsamp_warmup": _integer_at_least(2, ": a GradSamp epoch needs the parameters of the two epochs before it"),
    "gradsamp_period": _integer_at_least(2, ": with 1 every epoch would be sampled and nothing trained"),
    "gradsamp_prob": _probability,
}
"""What each numeric option must be (``None``: fine, else why not), for the mode's flags and
for a schedule built directly."""


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
        """Raise UserError for an impossible schedule; every message names the flag to fix.
        The rules are the mode's option checks (:data:`OPTION_RULES`), held once here."""
        if self.mode not in GRADSAMP_MODES:
            raise UserError(
                f"--gradsamp '{self.mode}' is unknown; choose one of {', '.join(GRADSAMP_MODES)}"
            )
        if self.mode == "off":
            return
        values = {"gradsamp_warmup": self.warmup, "gradsamp_period": self.period, "gradsamp_prob": self.prob}
        applies = {"gradsamp_warmup": True, "gradsamp_period": self.mode == "periodic",
                   "gradsamp_prob": self.mode == "random"}
        for name, rule in OPTION_RULES.items():
            reason = rule(values[name]) if applies[name] else None
            if reason:
                raise UserError(f"--{name} {reason}")

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
