"""Every selection rule by its ``--selection`` key: DomainBed's three and the DA validators."""

from __future__ import annotations

from dgsamp.errors import UserError
from dgsamp.leaderboard.adaptation_selection import ADAPTATION_RULES, AdaptationRule
from dgsamp.leaderboard.selection import RULES, SelectionRule

ALL_RULES: dict[str, SelectionRule | AdaptationRule] = {**RULES, **ADAPTATION_RULES}


def get_rule(key: str) -> SelectionRule | AdaptationRule:
    """DomainBed's rule ``key`` (``selection``), or the domain-adaptation rule ``key``
    (``adaptation_selection``)."""
    try:
        return ALL_RULES[key]
    except KeyError:
        raise UserError(f"unknown selection rule '{key}'; choose one of {', '.join(ALL_RULES)}") from None
