"""SWAD's overfit-aware averaging window ("LossValley", Cha et al. 2021), from losses alone.

Training is cut into segments (here: the backprop epochs); segment i ends with the
online model's validation loss e_i (mean cross-entropy on the training domains'
out-splits). With Nc = ``n_converge``, Nt = ``n_tolerance``, r = ``tolerance_ratio``:

    start s     = the first i with e_i <= min(e_{i+1}, ..., e_{i+Nc-1})
                  (the loss stopped falling; decided when e_{s+Nc-1} arrives)
    threshold   = (1 + r) * mean(e_s, ..., e_{s+Nc-1})
    j >= s joins the window iff min(e_j, ..., e_{j+Nt-1}) <= threshold, decided when
                  e_{j+Nt-1} arrives; the first j that fails closes the valley ("dead"),
                  no later segment joins. At the end of training the segments still
                  undecided are judged on the losses there are (shorter look-ahead).

Every segment of the window [s, end) joins once (a uniform average over the window, as
the paper writes it). The reference code (khanrc/swad, ``swad.py``) decides s, the
threshold and the end the same way, but its queue bookkeeping also folds in up to
Nt - Nc - 1 segments just before s when they are under the threshold, and can fold a
segment in twice. If no start is found by the end, ``converged`` stays False and SWAD
falls back to the last segment (as the reference does).
"""

from __future__ import annotations

from typing import Any


class LossValley:
    """Feed one loss per segment with :meth:`add`; it returns the segments that joined."""

    def __init__(self, n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3) -> None:
        self.n_converge, self.n_tolerance, self.tolerance_ratio = n_converge, n_tolerance, tolerance_ratio
        self.losses: list[float] = []
        self.start: int | None = None  # the first segment of the window
        self.threshold: float | None = None
        self.next = 0  # the first segment not yet decided (or still a possible start)
        self.end: int | None = None  # the first segment after the window, once it is closed

    @property
    def converged(self) -> bool:
        return self.start is not None

    @property
    def dead(self) -> bool:
        return self.end is not None

    @property
    def undecided(self) -> range:
        """Segments that may still join the window (their weights must be kept)."""
        return range(0) if self.dead else range(self.next, len(self.losses))

    def add(self, loss: float) -> list[int]:
        """Record the loss at the end of the next segment; the segments that joined now."""
        self.losses.append(float(loss))
        if self.dead or (not self.converged and not self._detect_start()):
            return []
        return self._decide(look_ahead=self.n_tolerance)

    def finish(self) -> list[int]:
        """End of training: decide the remaining segments over the losses there are."""
        if not self.converged or self.dead:
            return []
        return self._decide(look_ahead=1)

    def _detect_start(self) -> bool:
        first = len(self.losses) - self.n_converge
        if first < 0:
            return False
        window = self.losses[first:]
        if all(window[0] <= later for later in window[1:]):
            self.start = self.next = first
            self.threshold = (1.0 + self.tolerance_ratio) * sum(window) / len(window)
            return True
        self.next = first + 1  # segment `first` can no longer start the window
        return False

    def _decide(self, look_ahead: int) -> list[int]:
        """Decide segments in order while ``look_ahead`` losses from each are known."""
        assert self.threshold is not None
        joined = []
        while not self.dead and self.next + look_ahead <= len(self.losses):
            if min(self.losses[self.next : self.next + self.n_tolerance]) > self.threshold:
                self.end = self.next
            else:
                joined.append(self.next)
                self.next += 1
        return joined

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses), "start": self.start, "threshold": self.threshold,
                "next": self.next, "end": self.end}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = [float(loss) for loss in state["losses"]]
        self.start, self.threshold, self.next, self.end = (
            state["start"], state["threshold"], state["next"], state["end"])
