"""What makes two runs different methods, read from their args: the leaderboard's row key.

    variant = variant_from_args(record["args"])    # Variant("ERM", modes=(("swad", ...),), ...)
    variant.base_label()                           # "ERM + SWAD"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from dgsamp.tracking import schema
from dgsamp.tracking.adaptation_naming import ARG_ADAPTATION, adaptation_of
from dgsamp.tracking.adaptation_naming import label as adaptation_label
from dgsamp.tracking.ensemble_naming import ARG_ENSEMBLE, ensemble_of
from dgsamp.tracking.ensemble_naming import label as ensemble_label

ModeFields = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Variant:
    """What makes two runs different methods: algorithm + the training modes that are on
    + length (+ for an ensemble of such runs, its method and size: ``ensemble``; + for a
    test-time adaptation of such a run, its method: ``adaptation``).

    ``modes`` holds ``(mode name, its variant fields as sorted (option, value) items)`` for
    every mode that is on, in the modes' registration order; each mode's
    ``variant_fields`` leaves out the options that do not apply, so equal methods compare
    equal whatever else the args hold. A mode registered after the runs were written (its
    flags absent from their args) is off.
    """

    algorithm: str
    modes: tuple[tuple[str, ModeFields], ...] = ()
    epochs: int | None = None
    ensemble: tuple[str, int] | None = None  # (method, members) of a `dgsamp ensemble` run
    adaptation: str | None = None  # the method of a `dgsamp adapt` run (t3a, tent, ...)

    @property
    def is_plain(self) -> bool:
        """Plain backprop: no training mode on, not an ensemble."""
        return not self.modes and self.ensemble is None and self.adaptation is None

    @property
    def mode_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.modes)

    def mode(self, name: str) -> dict[str, Any] | None:
        """The variant fields of mode ``name`` (in the order the mode declares its
        options), or None when the mode is off."""
        for mode_name, items in self.modes:
            if mode_name == name:
                fields = dict(items)
                cls = mode_class(name)
                declared = [option for option in cls.OPTIONS if option in fields] if cls else []
                return {option: fields[option]
                        for option in [*declared, *sorted(set(fields) - set(declared))]}
        return None

    def with_mode(self, name: str, fields: Mapping[str, Any] | None) -> Variant:
        """A copy with mode ``name`` set to ``fields`` (None or empty: switched off)."""
        modes = {mode_name: dict(items) for mode_name, items in self.modes}
        modes.pop(name, None)
        if fields:
            modes[name] = dict(fields)
        return replace(self, modes=_mode_items(modes))

    def base_label(self) -> str:
        """Human label without the length, e.g. ``ERM + GradSamp(K=3, layer)``: the
        algorithm, then each mode's ``variant_label``, then an ensemble's (``EoA(3)``)."""
        parts = [self.algorithm]
        for name in self.mode_names:
            cls, fields = mode_class(name), self.mode(name) or {}
            if cls is not None:
                parts.append(cls.variant_label(fields))
            else:
                parts.append(f"{name}({', '.join(f'{k}={v}' for k, v in fields.items())})")
        if self.ensemble is not None:
            parts.append(ensemble_label(*self.ensemble))
        if self.adaptation is not None:
            parts.append(adaptation_label(self.adaptation))
        return " + ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """Flat fields: algorithm, every registered mode's options, epochs.

        An option of a mode that is off is null (its switch reads its default, e.g.
        ``"off"``); an option that does not apply to a mode that is on is null, or false
        for a boolean flag (a flag without effect is not set).
        """
        flat: dict[str, Any] = {schema.ARG_ALGORITHM: self.algorithm}
        names = registered_modes()
        for name in names:
            cls, fields = mode_class(name), self.mode(name)
            for option_name, option in cls.OPTIONS.items():
                if fields is None:
                    value = option.default if option_name == name else None
                elif option_name in fields:
                    value = fields[option_name]
                else:
                    value = False if isinstance(option.default, bool) else None
                flat[option_name] = value
        for name in self.mode_names:
            if name not in names:
                flat.update(self.mode(name) or {})
        flat[schema.ARG_EPOCHS] = self.epochs
        if self.ensemble is not None:  # only then: plain runs' fields stay as they were
            flat[ARG_ENSEMBLE] = ensemble_label(*self.ensemble)
        if self.adaptation is not None:
            flat[ARG_ADAPTATION] = adaptation_label(self.adaptation)
        return flat


def registered_modes() -> list[str]:
    """Names of the registered training modes, in registration order."""
    from dgsamp.registry import MODES

    return MODES.in_registration_order()


def mode_class(name: str) -> Any:
    """The registered TrainingMode class ``name``, or None."""
    from dgsamp.registry import MODES

    return MODES.get(name) if name in MODES else None


def _frozen(value: Any) -> Any:
    """``value`` made hashable (lists become tuples, dicts sorted item tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    return value


def _mode_items(modes: Mapping[str, Mapping[str, Any]]) -> tuple[tuple[str, ModeFields], ...]:
    """``{mode: fields}`` as Variant.modes: registration order, unknown modes last."""
    order = registered_modes()
    names = sorted(modes, key=lambda name: (name not in order,
                                            order.index(name) if name in order else 0, name))
    return tuple((name, tuple(sorted((key, _frozen(value)) for key, value in modes[name].items())))
                 for name in names if modes[name])


def variant_from_args(args: Mapping[str, Any]) -> Variant:
    """The :class:`Variant` of a run from its ``args``: each registered mode's
    ``variant_fields`` (DomainBed args, without mode flags, give a plain one) and, for a
    ``dgsamp ensemble`` run, ``args["ensemble"]``'s method and number of members."""
    modes = {name: mode_class(name).variant_fields(args) for name in registered_modes()}
    return Variant(str(args[schema.ARG_ALGORITHM]), _mode_items(modes), args.get(schema.ARG_EPOCHS),
                   ensemble_of(args), adaptation_of(args))
