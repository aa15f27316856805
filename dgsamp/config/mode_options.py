"""A training mode's options: defaults filled in, then checked by the rules the mode declares.

The rules, in order (``dgsamp.modes.base.Option``): a value's own ``check``; no option that
cannot have an effect (the mode is off, or the option's ``applies`` is false); then the
mode's cross-option ``validate``. Each rule lives with the mode that declares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dgsamp.errors import UserError
from dgsamp.modes.base import RunShape, TrainingMode


def resolve_mode_options(mode: type[TrainingMode], raw: Mapping[str, Any], run: RunShape) -> dict[str, Any]:
    """``mode``'s options from the parsed flags ``raw`` (unset ones None), checked."""
    name = mode.NAME
    given = {option: raw[option] for option in mode.OPTIONS if raw.get(option) is not None}
    options = {option: given.get(option, spec.default) for option, spec in mode.OPTIONS.items()}
    on = mode.is_on(options)
    for option, spec in mode.OPTIONS.items():
        if option not in given or option == name:
            continue
        if not on or (spec.applies is not None and not spec.applies(options)):
            needs = spec.requires or f"--{name}"
            raise UserError(f"--{option} has no effect without {needs}; drop it or add {needs}")
    for option, spec in mode.OPTIONS.items():
        reason = spec.check(options[option]) if spec.check is not None and (on or option == name) else None
        if reason:
            raise UserError(f"--{option} {reason}")
    if on:
        mode.validate(options, run)
    return options
