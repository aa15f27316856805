"""Equal-compute controls: does GradSamp beat simply training less?

Each GradSamp variant of a table (not an ensemble of GradSamp runs) is paired with two
controls from the same table:

- skip: the same schedule with ``gradsamp_dist=skip`` (sampled epochs leave the
  parameters unchanged: same energy, no update);
- fewer epochs: plain backprop (every training mode off) whose ``epochs`` equals the
  number of backprop epochs the GradSamp runs made (``backprop_epochs`` at their last
  record; for a random schedule, where it varies by run, the rounded mean).

The difference GradSamp − control is paired over trial seeds (the trial seed fixes the
data split, so both sides of a pair see the same split): for each trial seed s present
in both, ``d_s = 100 * (acc_gradsamp(s) - acc_control(s))`` with the selection rule's
pick on each side; the cell is ``mean(d)`` ± ``std(d, ddof=1) / sqrt(n)``, the sample
standard error (conservative; DomainBed's accuracy cells use ddof=0). With one common
seed the error is unknown. Avg pairs the per-seed mean over all test domains, for the
seeds that have every domain on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dgsamp.leaderboard.variant import Variant

SKIP = "skip"
FEWER_EPOCHS = "fewer_epochs"
GRADSAMP = "gradsamp"  # the mode (dgsamp.modes.gradsamp) and its options named here
GRADSAMP_DIST = "gradsamp_dist"
GRADSAMP_SCALE = "gradsamp_scale"


@dataclass(frozen=True)
class Difference:
    """Paired difference in percentage points; ``err`` None when ``n < 2``; n=0 missing."""

    mean: float | None
    err: float | None
    n: int

    @staticmethod
    def of(pairs: Sequence[tuple[float, float]]) -> Difference:
        if not pairs:
            return Difference(None, None, 0)
        diffs = np.asarray([100 * (a - b) for a, b in pairs], dtype=float)
        err = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else None
        return Difference(float(np.mean(diffs)), err, len(diffs))


@dataclass
class ControlRow:
    gradsamp_label: str
    kind: str  # SKIP or FEWER_EPOCHS
    control_label: str | None  # None when the control is not among the runs
    wanted: str  # what the control is, in words
    diffs: list[Difference]  # per test domain
    avg: Difference
    note: str = ""


def gradsamp_fields(variant: Variant) -> dict[str, Any] | None:
    """The variant's GradSamp fields; None when GradSamp is off."""
    return variant.mode(GRADSAMP)


def is_skip_control(variant: Variant) -> bool:
    """GradSamp with ``gradsamp_dist=skip``: the equal-compute control itself."""
    fields = gradsamp_fields(variant)
    return fields is not None and fields.get(GRADSAMP_DIST) == SKIP


def is_control(variant: Variant) -> bool:
    """Whether the variant exists only as a control (listed after the methods)."""
    return is_skip_control(variant)


def skip_control(variant: Variant) -> Variant:
    """The same GradSamp fields with ``gradsamp_dist=skip`` (its scale then does not apply)."""
    fields = dict(gradsamp_fields(variant) or {})
    fields[GRADSAMP_DIST] = SKIP
    fields.pop(GRADSAMP_SCALE, None)
    return variant.with_mode(GRADSAMP, fields)


def fewer_epochs_control(variant: Variant, backprop_epochs: int) -> Variant:
    """Plain backprop (no training mode) of the same algorithm for ``backprop_epochs``."""
    return Variant(algorithm=variant.algorithm, epochs=backprop_epochs)


def backprop_epoch_count(row) -> tuple[int | None, str]:
    """Backprop epochs of the row's selected runs, and a note when they vary."""
    counts = [c.run.backprop_epochs for c in row.choices if c.run.backprop_epochs is not None]
    if not counts:
        return None, "backprop_epochs not recorded"
    if len(set(counts)) == 1:
        return counts[0], ""
    count = round(sum(counts) / len(counts))
    return count, f"backprop epochs vary {min(counts)}–{max(counts)}; control uses {count}"


def paired_differences(row, control) -> tuple[list[Difference], Difference]:
    """Per test domain and Avg differences row − control, paired by trial seed."""
    diffs = []
    for env in sorted(row.trial_accs):
        ours, theirs = row.trial_accs[env], control.trial_accs.get(env, {})
        diffs.append(Difference.of([(ours[s], theirs[s]) for s in sorted(ours) if s in theirs]))
    envs = sorted(row.trial_accs)
    seeds = set.intersection(*(set(row.trial_accs[e]) & set(control.trial_accs.get(e, {}))
                               for e in envs)) if envs else set()
    avg_pairs = [
        (float(np.mean([row.trial_accs[e][s] for e in envs])),
         float(np.mean([control.trial_accs[e][s] for e in envs])))
        for s in sorted(seeds)
    ]
    return diffs, Difference.of(avg_pairs)


def pair_controls(rows: Sequence) -> list[ControlRow]:
    """A skip and a fewer-epochs :class:`ControlRow` for every GradSamp row of a table."""
    by_variant = {row.variant: row for row in rows}
    result = []
    for row in rows:
        variant: Variant = row.variant
        if gradsamp_fields(variant) is None or is_skip_control(variant) or variant.ensemble is not None:
            continue  # an ensemble of GradSamp runs has no control of its own
        wanted_skip = skip_control(variant)
        count, note = backprop_epoch_count(row)
        candidates = [(SKIP, wanted_skip, f"{wanted_skip.base_label()}, same epochs", "")]
        if count is not None:
            fewer = fewer_epochs_control(variant, count)
            candidates.append((FEWER_EPOCHS, fewer,
                               f"{fewer.base_label()} with {count} epochs", note))
        else:
            candidates.append((FEWER_EPOCHS, None, f"{variant.algorithm} with fewer epochs",
                               note))
        for kind, wanted, words, why in candidates:
            control = by_variant.get(wanted) if wanted is not None else None
            if control is None:
                empty = [Difference(None, None, 0) for _ in row.trial_accs]
                result.append(ControlRow(row.label, kind, None, words, empty,
                                         Difference(None, None, 0), why))
                continue
            diffs, avg = paired_differences(row, control)
            result.append(ControlRow(row.label, kind, control.label, words, diffs, avg, why))
    return result
