"""The ensemble methods ``dgsamp ensemble --method`` knows, and their labels.

- ``eoa``: Ensemble of Averages (Arpit et al., NeurIPS 2022): every member's evaluated
  (moving-average) model, prediction = mean of the members' logits;
- ``diwa_uniform``: DiWA (Ramé et al., NeurIPS 2022), uniform: one model whose weights
  are the mean of every member's;
- ``diwa_greedy``: DiWA's restricted (greedy) selection: members in decreasing
  training-domain validation accuracy, each kept iff the averaged model's validation
  accuracy does not drop.

A results line of an ensemble carries ``args["ensemble"]`` (:data:`ARG_ENSEMBLE`); the
leaderboard labels its row ``<members' label> + <LABEL>(<members>)``, e.g.
``ERM + EMA(0.999) + EoA(3)``. No torch import here: the leaderboard reads this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EOA, DIWA_UNIFORM, DIWA_GREEDY = "eoa", "diwa_uniform", "diwa_greedy"
LABELS = {EOA: "EoA", DIWA_UNIFORM: "DiWA-uniform", DIWA_GREEDY: "DiWA-greedy"}
WEIGHT_AVERAGING = (DIWA_UNIFORM, DIWA_GREEDY)

ARG_ENSEMBLE = "ensemble"
"""``args`` key of an ensemble's results line: a dict with ``method``, ``members`` (job ids
of the members used), ``member_dirs``, ``candidates`` (job ids of every run considered)
and, for ``diwa_greedy``, ``selection`` (one entry per candidate tried)."""
ENSEMBLE_KIND = "ensemble"
"""``epoch_kind`` of an ensemble's single results line (no training happened in it)."""


def ensemble_of(args: Mapping[str, Any]) -> tuple[str, int] | None:
    """``(method, number of members)`` of a run's args, or None for a trained run."""
    spec = args.get(ARG_ENSEMBLE)
    if not isinstance(spec, Mapping):
        return None
    return str(spec.get("method")), len(spec.get("members") or ())


def label(method: str, size: int) -> str:
    """``EoA(3)``, ``DiWA-greedy(2)``; an unknown method keeps its name."""
    return f"{LABELS.get(method, method)}({size})"
