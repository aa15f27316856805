"""The ssProp keep fraction per epoch (arXiv 2408.12561's drop schedulers).

``keep(epoch)`` for 1-based epochs of a run of ``epochs`` epochs, with t = (epoch−1)/(epochs−1)
(t = 0 for a one-epoch run), keep = ``keep``, keep_min = ``keep_min``:

- ``off``:      1.0 (dense backward)
- ``constant``: keep
- ``linear``:   keep − (keep − keep_min)·t
- ``cosine``:   keep_min + ½(keep − keep_min)(1 + cos πt)
- ``bar``:      keep for the first ⌊epochs/2⌋ epochs, keep_min after (a step, as the
                paper's reference scheduler defines 'bar')

Priority, as in the paper's scheduler: warm-up first (epochs 1..warmup are dense), then
interleave (the 1st, 3rd, 5th, ... epoch after warm-up is dense, the 2nd, 4th, ... takes the
shape's value), then the shape. The paper's default, constant keep 0.2 interleaved, averages
(1 + 0.2)/2 = 0.6 of the dense backward conv FLOPs: 40% fewer.
"""

from __future__ import annotations

import math

from dgsamp.errors import UserError

SSPROP_KINDS = ("off", "constant", "linear", "cosine", "bar")


class SSPropSchedule:
    """Kept fraction of conv output channels per epoch; pure function of its arguments."""

    def __init__(
        self,
        kind: str = "off",
        keep: float = 0.2,
        keep_min: float = 0.2,
        warmup: int = 0,
        interleave: bool = False,
        epochs: int = 1,
    ) -> None:
        self.kind = kind
        self.keep_max = float(keep)
        self.keep_min = float(keep_min)
        self.warmup = warmup
        self.interleave = interleave
        self.epochs = epochs
        self.validate()

    def validate(self) -> None:
        """Raise UserError naming the flag to fix."""
        if self.kind not in SSPROP_KINDS:
            raise UserError(
                f"--ssprop '{self.kind}' is unknown; choose one of {', '.join(SSPROP_KINDS)}"
            )
        if self.kind == "off":
            return
        if not 0.0 < self.keep_max <= 1.0:
            raise UserError(f"--ssprop_keep must be in (0, 1] (got {self.keep_max})")
        if self.kind != "constant" and not 0.0 < self.keep_min <= self.keep_max:
            raise UserError(
                f"--ssprop_keep_min must be in (0, --ssprop_keep={self.keep_max}] "
                f"(got {self.keep_min}); the {self.kind} schedule goes from keep down to keep_min"
            )
        if int(self.warmup) != self.warmup or self.warmup < 0:
            raise UserError(f"--ssprop_warmup must be an integer >= 0 (got {self.warmup})")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise UserError(f"--epochs must be an integer >= 1 (got {self.epochs})")

    def keep(self, epoch: int) -> float:
        """Fraction in (0, 1] of output channels whose gradients epoch ``epoch`` keeps."""
        if epoch < 1:
            raise ValueError(f"epochs are 1-based, got {epoch}")
        if self.kind == "off" or epoch <= self.warmup:
            return 1.0
        if self.interleave and (epoch - self.warmup) % 2 == 1:
            return 1.0
        return self.shape(epoch)

    def shape(self, epoch: int) -> float:
        """The schedule's value at ``epoch`` ignoring warm-up and interleave."""
        hi, lo = self.keep_max, self.keep_min
        t = (epoch - 1) / (self.epochs - 1) if self.epochs > 1 else 0.0
        t = min(max(t, 0.0), 1.0)
        if self.kind == "off":
            return 1.0
        if self.kind == "constant":
            return hi
        if self.kind == "linear":
            return hi - (hi - lo) * t
        if self.kind == "cosine":
            return lo + 0.5 * (hi - lo) * (1.0 + math.cos(math.pi * t))
        return hi if (epoch - 1) < self.epochs // 2 else lo  # bar

    def mean_keep(self) -> float:
        """Average keep over the run: the fraction of dense backward conv FLOPs it costs."""
        return sum(self.keep(e) for e in range(1, self.epochs + 1)) / self.epochs

    def __repr__(self) -> str:
        return (
            f"SSPropSchedule(kind={self.kind!r}, keep={self.keep_max}, keep_min={self.keep_min}, "
            f"warmup={self.warmup}, interleave={self.interleave}, epochs={self.epochs})"
        )
