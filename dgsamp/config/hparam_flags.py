"""One ``--NAME`` flag per hyperparameter, with help that fits the algorithm being trained.

``dgsamp train --algorithm DANN --help`` lists DANN's hyperparameters (and the common ones)
with DANN's defaults, valid values and random-search range; the other algorithms' flags
stay accepted but hidden (the hparams registry refuses one the algorithm does not use).
Without ``--algorithm``, each flag names every algorithm that uses it, with its default
there: ``--lambda`` is DANN's adversarial weight (1.0) and Fishr's penalty (1000.0).
"""

from __future__ import annotations

import argparse

import numpy as np

from dgsamp.hparams import COMMON_HPARAMS, HParam, hparam_specs
from dgsamp.registry import ALGORITHMS

SEARCH_DRAWS = 200  # draws that show a hparam's random-search range in --help


def all_hparam_specs() -> dict[str, HParam]:
    """The union of every registered algorithm's hparams and the common ones."""
    specs: dict[str, HParam] = dict(COMMON_HPARAMS)
    for name in ALGORITHMS.names():
        specs.update(hparam_specs(ALGORITHMS.get(name)))
    return specs


def add_hparam_arguments(parser: argparse.ArgumentParser, algorithm: str | None) -> None:
    """The hparam flags; help for ``algorithm`` when it is a registered name, else for all."""
    specs = all_hparam_specs()
    own = hparam_specs(ALGORITHMS.get(algorithm)) if algorithm in ALGORITHMS else None
    title = f"hyperparameters of {algorithm}" if own is not None else "hyperparameters"
    group = parser.add_argument_group(f"{title} (default: from --hparams_seed)")
    users = _users_by_name()
    for name, spec in sorted(specs.items()):
        if own is None:
            help_text = _shared_help(name, users.get(name, []))
        elif name in own:
            help_text = _own_help(own[name])
        else:
            help_text = argparse.SUPPRESS
        action = group.add_argument(f"--{name}", type=flag_type(spec), default=None,
                                    metavar=spec.type.__name__.upper(), help=help_text)
        action.search_range = SearchRange(spec)  # drawn only if --help prints it


class SearchRange:
    """A hparam's random-search range, drawn when ``--help`` formats it (``%(search_range)s``):
    the draws take ~30 ms per hparam, which every parse of ``dgsamp train`` would otherwise pay."""

    def __init__(self, spec: HParam) -> None:
        self.spec = spec

    def __str__(self) -> str:
        return search_range(self.spec)


def _own_help(spec: HParam) -> str:
    valid = f"; valid: {spec.constraint}" if spec.constraint else ""
    text = f"{spec.help} (default {spec.default!r}{valid}; search: ".replace("%", "%%")
    return text + "%(search_range)s)"


def _shared_help(name: str, users: list[tuple[str, HParam]]) -> str:
    if name in COMMON_HPARAMS:
        spec = COMMON_HPARAMS[name]
        return f"{spec.help} (every algorithm; default {spec.default!r})".replace("%", "%%")
    by_meaning: dict[tuple[str, str], list[str]] = {}
    for algorithm, spec in users:
        by_meaning.setdefault((spec.help, repr(spec.default)), []).append(algorithm)
    parts = [f"{', '.join(names)}: {help_text} (default {default})" for (help_text, default), names in by_meaning.items()]
    return "; ".join(parts).replace("%", "%%")


def _users_by_name() -> dict[str, list[tuple[str, HParam]]]:
    users: dict[str, list[tuple[str, HParam]]] = {}
    for algorithm in sorted(ALGORITHMS.names()):
        for name, spec in getattr(ALGORITHMS.get(algorithm), "HPARAMS", {}).items():
            users.setdefault(name, []).append((algorithm, spec))
    return users


def search_range(spec: HParam) -> str:
    """What random search draws (``--hparams_seed`` >= 1), seen over ``SEARCH_DRAWS`` draws."""
    draws = [spec.sample(np.random.RandomState(seed)) for seed in range(SEARCH_DRAWS)]
    values = [draw.item() if isinstance(draw, np.generic) else draw for draw in draws]
    distinct = sorted(set(values), key=repr)
    if len(distinct) == 1:
        return f"fixed at {distinct[0]!r}"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return f"{min(values):.3g} to {max(values):.3g}"
    return "one of " + ", ".join(repr(v) for v in distinct)


def flag_type(spec: HParam):
    return parse_bool if spec.type is bool else spec.type


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes"}:
        return True
    if lowered in {"0", "false", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
