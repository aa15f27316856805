"""The test-time adaptation methods ``dgsamp adapt --method`` knows, their labels, and the
keys an adaptation's results line adds.

A results line of an adaptation carries ``args["adaptation"]`` (:data:`ARG_ADAPTATION`);
the leaderboard labels its row ``<source's label> + <LABEL>``, e.g. ``ERM + T3A`` or
``ERM + SWAD + T3A``. No torch import here: the leaderboard reads this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABELS = {"t3a": "T3A", "tent": "Tent", "tent_bn": "Tent-BN", "shot_im": "SHOT-IM", "pseudo_label": "PL",
          "bn_adapt": "BN-Adapt"}

ARG_ADAPTATION = "adaptation"
"""``args`` key of an adaptation's results line: a dict with ``method``, ``hparams`` (the
method's), ``batch_size``, ``stream_seed``, ``source_dir``, ``source_job_id``,
``source_epoch``, ``source_step`` and ``source_ood_acc`` (the selected model's, unadapted)."""
ADAPTATION_KIND = "adaptation"
"""``epoch_kind`` of an adaptation's single results line."""
ADAPT_ENERGY_J = "adapt_energy_j"
"""float or null: measured energy of the adaptation (every split's stream; J)."""
ADAPT_FLOPS = "adapt_flops"
"""int: counted FLOPs of the adaptation (forward, and backward where the method trains)."""
ADAPT_SECONDS = "adapt_seconds"
"""float: wall time of the adaptation (s)."""


def adaptation_of(args: Mapping[str, Any]) -> str | None:
    """The adaptation method of a run's args, or None for a run that was not adapted."""
    spec = args.get(ARG_ADAPTATION)
    return str(spec.get("method")) if isinstance(spec, Mapping) else None


def label(method: str) -> str:
    """``T3A``, ``SHOT-IM``; an unknown method keeps its name."""
    return LABELS.get(method, method)
