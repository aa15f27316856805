"""What test-time adaptation costs on top of training, for the rows of ``dgsamp adapt`` runs.

A ``ERM + T3A`` row's energy and FLOPs columns are its source runs' training totals (what the
model cost to train, the same as the ``ERM`` row). The adaptation is metered apart
(``adapt_energy_j``, ``adapt_flops`` in its results line, ``dgsamp.adaptation.record``): the
row's adaptation cost is their mean over the selected runs (None: some run unmeasured), and
each table with such rows gets one note per row, beside the gain it bought:

    ERM + T3A: adaptation 0.041 kJ, 1.02e+13 FLOPs (+3.1 % of training FLOPs) on top of training
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dgsamp.tracking.adaptation_naming import ADAPT_ENERGY_J, ADAPT_FLOPS


def mean_adaptation_cost(last_records: Sequence[dict[str, Any]]) -> tuple[float | None, float | None]:
    """(energy in kJ, FLOPs): means over the selected runs' last records; None where any run lacks one."""
    return _mean(last_records, ADAPT_ENERGY_J, 1 / 1000), _mean(last_records, ADAPT_FLOPS, 1.0)


def adaptation_note(label: str, energy_kJ: float | None, flops: float | None, train_flops: float | None) -> str:
    """One line naming what the adaptation of row ``label`` cost (``n/a`` where unmeasured)."""
    energy = "energy n/a" if energy_kJ is None else f"{energy_kJ:.3f} kJ"
    if flops is None:
        return f"{label}: adaptation {energy}, FLOPs n/a, on top of training"
    share = f" ({100 * flops / train_flops:+.1f} % of training FLOPs)" if train_flops else ""
    return f"{label}: adaptation {energy}, {flops:.2e} FLOPs{share} on top of training"


def _mean(records: Sequence[dict[str, Any]], key: str, scale: float) -> float | None:
    values = [record.get(key) for record in records]
    if not values or any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        return None
    return scale * sum(values) / len(values)
